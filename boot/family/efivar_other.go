//go:build !linux

package family

// The firmware's variables are Linux's efivarfs; elsewhere (cairn on a
// workstation) there are none to arm a trial with.
func isEFIVarFS(string) bool { return false }

func unimmutable(string) {}
