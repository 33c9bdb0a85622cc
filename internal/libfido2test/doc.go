// Package libfido2test drives a running vkey with go-libfido2
// (github.com/keys-pub/go-libfido2), the Go binding of Yubico's libfido2,
// as an independent client: nothing in it shares code with vkey's own
// CTAP2 client. Its tests need cgo and libfido2-dev, so they are behind the
// libfido2 build tag (make test runs them with `go test -tags libfido2
// ./internal/libfido2test`); the default build stays free of cgo.
package libfido2test
