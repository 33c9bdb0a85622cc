package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// defaultName is the name of a key when --name is not given.
const defaultName = "vkey"

// stateDir is where key NAME keeps its state: $XDG_DATA_HOME/vkey/NAME
// (~/.local/share/vkey/NAME).
func stateDir(name string) (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the state folder: %w (set --state DIR or XDG_DATA_HOME)", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "vkey", name), nil
}

// runtimeDir is where running keys put their control sockets:
// $XDG_RUNTIME_DIR/vkey, or a per-user folder under the temp dir.
func runtimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "vkey")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("vkey-%d", os.Getuid()))
}

// controlSocketPath is the control socket of the running key NAME.
func controlSocketPath(name string) string {
	return filepath.Join(runtimeDir(), name+".sock")
}
