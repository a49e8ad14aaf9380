// Package configs owns the node configuration: the Go types of the one YAML
// document a user writes, its strict decoding (unknown keys and wrong types are
// errors that name file:line:col and the field path), its validation, and the
// JSON Schema and Markdown reference generated from the types.
//
// Reading and decoding are bounded (limits.go: file size, values after
// aliases, problems reported and their length), because init reads, as PID
// 1, a cairn.yaml that anyone holding the card can edit.
//
// It must not do I/O beyond reading the file it is asked to load, and it knows
// nothing about boards, packages or images.
package configs
