package main

import "github.com/vkey-dev/vkey"

// defaultName is the name of a key when --name is not given.
const defaultName = vkey.DefaultName

// runtimeDir is where running keys put their control sockets.
func runtimeDir() string { return vkey.RuntimeDir() }

// controlSocketPath is the control socket of the running key NAME.
func controlSocketPath(name string) string { return vkey.DefaultControlSocket(name) }
