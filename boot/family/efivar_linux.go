package family

import (
	"os"

	"golang.org/x/sys/unix"
)

// isEFIVarFS says whether efivarfs is mounted at p.
func isEFIVarFS(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && uint32(st.Type) == unix.EFIVARFS_MAGIC
}

const fsImmutable = 0x10 // FS_IMMUTABLE_FL

// unimmutable clears the immutable flag efivarfs puts on most variables
// to keep them from being deleted by accident.
func unimmutable(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err == nil && flags&fsImmutable != 0 {
		unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutable))
	}
}
