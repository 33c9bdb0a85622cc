package vkey

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/keystore"
)

// This file reads Options from text, as `vkey run`'s flags give them.

// AlgorithmListError is a list ParseAlgorithms refuses.
type AlgorithmListError struct {
	// Name is the entry refused.
	Name string
	// Twice is set when it is listed twice, else it is unknown.
	Twice bool
}

func (e *AlgorithmListError) Error() string {
	if e.Twice {
		return fmt.Sprintf("algorithm %s is listed twice", e.Name)
	}
	return fmt.Sprintf("unknown algorithm %q", e.Name)
}

// ParseAlgorithms reads Options.Algorithms from COSE algorithm names or
// numbers (keystore.AlgorithmNamed), comma-separated, each once and each
// one of keystore.SoftwareAlgorithms. Empty means nil, the default.
func ParseAlgorithms(list string) ([]keystore.Algorithm, error) {
	if list == "" {
		return nil, nil
	}
	var out []keystore.Algorithm
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		alg, ok := keystore.AlgorithmNamed(name)
		if !ok || !slices.Contains(keystore.SoftwareAlgorithms, alg) {
			return nil, &AlgorithmListError{Name: name}
		}
		if slices.Contains(out, alg) {
			return nil, &AlgorithmListError{Name: name, Twice: true}
		}
		out = append(out, alg)
	}
	return out, nil
}

// ParseAAGUID reads Options.AAGUID from a UUID in its 8-4-4-4-12 hex form.
// Empty means the zero AAGUID, the default.
func ParseAAGUID(s string) ([16]byte, error) {
	var out [16]byte
	if s == "" {
		return out, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 || len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return out, fmt.Errorf("%q is not a UUID (want the form 766b6579-2d76-6972-7475-616c2d6b6579)", s)
	}
	copy(out[:], b)
	return out, nil
}

// FormatAAGUID writes an AAGUID as a UUID, the form ParseAAGUID reads
// (anything but 16 bytes in plain hex).
func FormatAAGUID(b []byte) string {
	if len(b) != 16 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// LoadAttestationCA reads Options.AttestationCA from a PEM certificate and
// a PEM private key (PKCS#8, SEC 1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE
// KEY").
func LoadAttestationCA(certFile, keyFile string) (*ctap2.AttestationCA, error) {
	cert, err := readPEM(certFile, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	key, err := readPEM(keyFile, "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	var k any
	switch key.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(key.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(key.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(key.Bytes)
	}
	var pkcs8 []byte
	if err == nil {
		pkcs8, err = x509.MarshalPKCS8PrivateKey(k)
	}
	if err != nil {
		return nil, fmt.Errorf("%s holds no usable private key: %v", keyFile, err)
	}
	return &ctap2.AttestationCA{Cert: cert.Bytes, Key: pkcs8}, nil
}

// readPEM reads the first PEM block of one of the given types from file.
func readPEM(file string, types ...string) (*pem.Block, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s holds no PEM %s", file, strings.Join(types, " or "))
		}
		if slices.Contains(types, b.Type) {
			return b, nil
		}
	}
}
