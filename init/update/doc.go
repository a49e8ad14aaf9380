// Package update is the updater on the device: it installs an update
// bundle into the slot the node is not running, straight from the stream
// (checked against the trusted keys before a byte is written, and file by
// file while it streams), reads the slot back, and arms a one-shot trial
// boot of it through the boot family's chooser; at the next boot it
// commits the trial slot once the node is healthy, or reboots into the
// committed one. It keeps what each slot holds and the last update's
// result on the data partition, and serves all of it on the node API
// (mutual TLS with the fleet's CA). It never writes the running slot or
// the committed one.
package update
