// Package apt is the build's package supply: a client for Debian-format apt
// repositories. It fetches InRelease and checks its OpenPGP signature against
// a keyring, and that it is current: a release that has expired
// (Valid-Until), is for another suite, has no Date, or is dated before the
// last one seen from that source (remembered in the cache) is refused, so a
// mirror cannot replay old, validly signed metadata to hold back fixes. It
// fetches Packages indexes whose sha256 the signed release lists, resolves
// dependency closures, and downloads .deb files into a content-addressed
// cache, checking each one's sha256. It reads no body past the size the
// signed metadata gives for it (an InRelease file, whose size nothing gives,
// past 8 MiB); a request with the default HTTP client ends after 10
// minutes. Offline, it works from that cache or from a folder of .debs.
//
// It names no repository host: sources come from the caller (the config's
// repositories:) or from the build host's apt configuration.
package apt
