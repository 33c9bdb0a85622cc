//go:build cgo && tpmsim

package tpm

import (
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/simulator"
)

// openSim starts go-tpm-tools' in-process reference simulator.
func openSim() (transport.TPMCloser, error) { return simulator.OpenSimulator() }
