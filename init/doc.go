// Package init is empty: it only holds the device's PID 1 packages, since a
// Go package cannot be named init. pid1 runs the boot as a table of phases;
// disk finds the boot disk and manages the data partition; netup brings up
// interfaces; clock keeps time.
package initdoc
