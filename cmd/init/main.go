// Command init is PID 1 on Cairn devices.
package main

import "github.com/cairn-os/cairn/init/pid1"

func main() { pid1.Main() }
