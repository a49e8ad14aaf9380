#!/bin/sh
# Installs the Debian packages Cairn's build, VM and tests use, when missing.
# As root it uses apt-get; otherwise it names what to install.
set -eu
need=""
check() { # command package
	command -v "$1" >/dev/null 2>&1 || need="$need $2"
}
check qemu-system-aarch64 qemu-system-arm
check qemu-system-x86_64 qemu-system-x86
# The VM tests run the images' own kubectl (arm64 cairnd) on the host.
[ "$(uname -m)" = aarch64 ] || check qemu-aarch64-static qemu-user-static
check unsquashfs squashfs-tools
check fsck.vfat dosfstools
check mcopy mtools
check sfdisk fdisk
check sgdisk gdisk
check cpio cpio
check e2fsck e2fsprogs
check openssl openssl
# cairnd links SQLite through cgo: a C compiler and static C library for
# each architecture.
check gcc gcc
[ -e /usr/include/stdio.h ] || need="$need libc6-dev"
case "$(uname -m)" in
x86_64)
	check aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
	[ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need="$need libc6-dev-arm64-cross" ;;
aarch64)
	check x86_64-linux-gnu-gcc gcc-x86-64-linux-gnu
	[ -e /usr/x86_64-linux-gnu/lib/libc.a ] || need="$need libc6-dev-amd64-cross" ;;
esac
[ -e /usr/share/AAVMF/AAVMF_CODE.fd ] || need="$need qemu-efi-aarch64"
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || [ -e /usr/share/OVMF/OVMF_CODE.fd ] || need="$need ovmf"
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need="$need debian-archive-keyring"
# The durability test of atomic writes reads their system calls.
check strace strace
# The test of kine on an external datastore (cluster/datastore) runs a private PostgreSQL.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
# The tests of images pulled at build time run a private registry.
check docker-registry docker-registry
command -v go >/dev/null 2>&1 || { echo "Go is missing: install Go 1.26 or later (https://go.dev/dl/)" >&2; exit 1; }
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing:$need"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
else
	echo "missing packages:$need (install them with: sudo apt-get install$need)" >&2
	exit 1
fi
