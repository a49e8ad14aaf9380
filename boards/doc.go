// Package boards holds one YAML profile per supported board, embedded in the
// binary, and loads them into typed Profiles. A profile is data: architecture,
// kernel and firmware packages, device trees, console, modules, partition
// layout and boot family. It must not contain build logic.
package boards
