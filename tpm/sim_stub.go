//go:build !(cgo && tpmsim)

package tpm

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"
)

// openSim reports that the simulator is not built in: it is for tests only
// and needs cgo and the tpmsim build tag.
func openSim() (transport.TPMCloser, error) {
	return nil, errors.New("TPM simulator not built in (build with cgo and -tags tpmsim)")
}
