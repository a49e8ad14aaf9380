package family

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unicode/utf16"
)

// systemd-boot's EFI variables, as Linux's efivarfs shows them.
const (
	efiVars    = "/sys/firmware/efi/efivars"
	loaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	efiOneShot = "LoaderEntryOneShot"
	efiDefault = "LoaderEntryDefault"
)

// checkEFIVars fails unless efivarfs is where the variables are expected:
// without it no trial can be armed.
var checkEFIVars = func() error {
	if !isEFIVarFS(efiVars) {
		return fmt.Errorf("the firmware's variables are not available at %s (efivarfs), so no trial boot can be armed", efiVars)
	}
	return nil
}

// efiVarPath is where efivarfs shows a variable; a variable to tests.
var efiVarPath = func(name string) string { return efiVars + "/" + name + "-" + loaderGUID }

// setEFIVar stores a string variable in the firmware's non-volatile
// memory, as systemd-boot reads it (UTF-16, ending in a zero), and reads
// it back: some firmware drops what it cannot store.
func setEFIVar(name, value string) error {
	const attrs = 0x7 // non-volatile, boot service and runtime access
	u := utf16.Encode([]rune(value + "\x00"))
	data := binary.LittleEndian.AppendUint32(nil, attrs)
	for _, c := range u {
		data = binary.LittleEndian.AppendUint16(data, c)
	}
	p := efiVarPath(name)
	unimmutable(p)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("set EFI variable %s: %w (is efivarfs mounted at %s?)", name, err, efiVars)
	}
	// efivarfs takes a variable in one write.
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set EFI variable %s: %w", name, err)
	}
	back, err := os.ReadFile(p)
	if err != nil || string(back[min(4, len(back)):]) != string(data[4:]) {
		return fmt.Errorf("EFI variable %s did not keep its value (%v): the firmware may be out of variable space", name, err)
	}
	return nil
}

// deleteEFIVar deletes a variable if it is there.
func deleteEFIVar(name string) error {
	p := efiVarPath(name)
	unimmutable(p)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete EFI variable %s: %w", name, err)
	}
	return nil
}
