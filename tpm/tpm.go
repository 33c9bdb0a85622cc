// Package tpm keeps vkey's device-bound credential keys and its sealed master
// key in a TPM 2.0, through github.com/google/go-tpm (package tpm2).
//
// Credential keys are signing keys (ECC P-256, and P-384, P-521 and
// RSA-2048 where the TPM has them) created under an ECC storage
// primary key (the SRK, re-derived from the owner hierarchy's seed with a fixed
// template, so it is the same after every restart and needs no persistent
// handle). They carry fixedTPM|fixedParent|sensitiveDataOrigin: the private
// key never leaves the TPM, only its wrapped form (TPM2B_PRIVATE, encrypted
// and integrity-protected under the SRK) travels in the blob. The TPM holds
// few transient objects (three on the reference simulators), so every key is
// loaded, used and flushed within one call; only the SRK stays loaded.
//
// A *TPM implements keystore.KeyProvider (KeyProvider), keystore.Sealer
// (Sealer) and, per key, keystore.TPMKey for the WebAuthn "tpm" attestation
// statement format (WebAuthn section 8.3).
package tpm

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"syscall"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultDevice is the kernel's TPM resource manager, which Open uses for "".
const DefaultDevice = "/dev/tpmrm0"

// Errors callers may test with errors.Is.
var (
	// ErrNoTPM means there is no TPM at the requested place.
	ErrNoTPM = errors.New("no TPM found")
	// ErrPermission means the TPM exists but this user may not open it.
	ErrPermission = errors.New("permission denied on the TPM")
	// ErrLockout means the TPM is in dictionary-attack lockout.
	ErrLockout = errors.New("TPM is in dictionary-attack lockout")
	// ErrForeignBlob means a key or sealed blob was made by another TPM (or
	// under another owner seed, e.g. after TPM2_Clear), so this TPM cannot
	// use it.
	ErrForeignBlob = errors.New("blob belongs to another TPM")
	// ErrBadBlob means a blob is malformed or not of the expected kind.
	ErrBadBlob = errors.New("malformed TPM blob")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("TPM is closed")
)

// TPM is an open TPM with vkey's storage primary key loaded. All its methods
// are safe for concurrent use: commands to the TPM are serialised.
type TPM struct {
	mu   sync.Mutex
	t    transport.TPMCloser // nil after Close
	desc string

	srk     tpm2.TPMHandle
	srkName tpm2.TPM2BName
	srkPub  tpm2.TPMTPublic

	info    *tpmInfo         // manufacturer/model/version, read once
	caps    *tpmCapabilities // curves and RSA sizes, asked once
	pssSalt *bool            // whether RSAPSS uses a digest-length salt, asked once (pssSaltOK)
}

// Open opens a TPM. spec is "" or a device path such as "/dev/tpmrm0" (the
// kernel resource manager; "" means DefaultDevice), "swtpm:PATH" for the unix
// socket of swtpm's server (raw TPM command stream, e.g. swtpm socket --server
// type=unixio,path=PATH), or "sim" for go-tpm-tools' in-process simulator
// (only in binaries built with cgo and the tpmsim build tag; for tests).
//
// Open creates (re-derives) the storage primary key, so errors such as a TPM
// in lockout or an owner hierarchy with a password show up here.
func Open(spec string) (*TPM, error) {
	var (
		t    transport.TPMCloser
		desc string
		err  error
	)
	switch {
	case spec == "sim":
		desc = "simulator"
		t, err = openSim()
		if err != nil {
			return nil, fmt.Errorf("open TPM simulator: %w", err)
		}
	case strings.HasPrefix(spec, "swtpm:"):
		path := strings.TrimPrefix(spec, "swtpm:")
		desc = "swtpm socket " + path
		t, err = dialSocket(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || isConnRefused(err) {
				return nil, fmt.Errorf("%w at %s (is swtpm running?): %w", ErrNoTPM, path, err)
			}
			return nil, fmt.Errorf("open swtpm socket %s: %w", path, err)
		}
	default:
		path := spec
		if path == "" {
			path = DefaultDevice
		}
		desc = path
		t, err = openDevice(path)
		if err != nil {
			return nil, err
		}
	}
	return newTPM(t, desc)
}

// openDevice opens a TPM character device, turning the usual failures into
// errors that say what to do.
func openDevice(path string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(path)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w at %s: %w (no TPM 2.0 on this machine, or its driver is not loaded)", ErrNoTPM, path, err)
	case errors.Is(err, fs.ErrPermission):
		return nil, permissionError(path, err)
	case errors.Is(err, linuxtpm.ErrFileIsNotDevice):
		return nil, fmt.Errorf("%w at %s: %w (for a swtpm socket use swtpm:%s)", ErrNoTPM, path, err, path)
	default:
		return nil, fmt.Errorf("open TPM %s: %w", path, err)
	}
}

// permissionError explains how to get access to a TPM device.
func permissionError(path string, err error) error {
	return fmt.Errorf("%w: cannot open %s: %w; join the group that owns it, usually tss: sudo usermod -aG tss $USER (then log in again)", ErrPermission, path, err)
}

// newTPM takes ownership of t and creates the storage primary key.
func newTPM(t transport.TPMCloser, desc string) (*TPM, error) {
	tp := &TPM{t: t, desc: desc}
	if err := tp.createSRK(); err != nil {
		_ = t.Close()
		return nil, err
	}
	return tp, nil
}

// String describes where the TPM is ("/dev/tpmrm0", "swtpm socket PATH").
func (tp *TPM) String() string { return "TPM " + tp.desc }

// Close flushes the storage primary key and closes the connection. It is
// safe to call more than once.
func (tp *TPM) Close() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.t == nil {
		return nil
	}
	var errFlush error
	if tp.srk != 0 {
		errFlush = flush(tp.t, tp.srk)
		tp.srk = 0
	}
	errClose := tp.t.Close()
	tp.t = nil
	if errClose != nil {
		return fmt.Errorf("close %s: %w", tp.desc, errClose)
	}
	if errFlush != nil {
		return fmt.Errorf("close %s: flush storage key: %w", tp.desc, errFlush)
	}
	return nil
}

// srkTemplate is the storage primary key: the TCG reference ECC P-256 SRK
// template (TCG TPM v2.0 Provisioning Guidance, section 7.5.1): restricted
// decrypt, fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA,
// AES-128-CFB, zero unique. The same owner seed and template always give the
// same key.
func srkTemplate() tpm2.TPMTPublic { return tpm2.ECCSRKTemplate }

// createSRK derives the storage primary key under the owner hierarchy.
func (tp *TPM) createSRK() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	create := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(srkTemplate()),
	}
	rsp, err := create.Execute(tp.t)
	if errors.Is(err, tpm2.TPMRCInitialize) {
		// A TPM that was never started (a bare swtpm without startup-clear,
		// a fresh simulator): start it, as firmware does at boot.
		if _, serr := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tp.t); serr != nil {
			return tp.wrap("TPM2_Startup", serr)
		}
		rsp, err = create.Execute(tp.t)
	}
	if err != nil {
		return tp.wrap("create storage primary key", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		_ = flush(tp.t, rsp.ObjectHandle)
		return fmt.Errorf("%s: storage primary key public area: %w", tp.desc, err)
	}
	tp.srk, tp.srkName, tp.srkPub = rsp.ObjectHandle, rsp.Name, *pub
	return nil
}

// conn returns the transport, or ErrClosed. Callers hold tp.mu.
func (tp *TPM) conn() (transport.TPM, error) {
	if tp.t == nil {
		return nil, ErrClosed
	}
	return tp.t, nil
}

// srkAuth is the parent handle for commands under the storage primary key
// (empty password: the SRK has no auth value).
func (tp *TPM) srkAuth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: tp.srk, Name: tp.srkName, Auth: tpm2.PasswordAuth(nil)}
}

// encSession is an HMAC session salted with the SRK that encrypts the first
// command parameter (opt tpm2.AESEncryption(128, tpm2.EncryptIn)) or response
// parameter (EncryptOut), so a sealed secret never crosses the TPM bus in the
// clear (TPM 2.0 Part 1, section 21 "Session-based encryption"). It also
// authorizes the use of the (password-less) SRK.
func (tp *TPM) encSession(opt tpm2.AuthOption) tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, opt, tpm2.Salted(tp.srk, tp.srkPub))
}

// flush evicts a transient object.
func flush(t transport.TPM, h tpm2.TPMHandle) error {
	_, err := tpm2.FlushContext{FlushHandle: h}.Execute(t)
	if err != nil {
		return fmt.Errorf("flush 0x%08x: %w", uint32(h), err)
	}
	return nil
}

// wrap adds the TPM's description and operation to err, and turns the TPM
// responses a user can act on into the package's sentinel errors.
func (tp *TPM) wrap(op string, err error) error {
	switch {
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("%s: %s: %w (wait for the lockout to expire, or clear it: tpm2_dictionarylockout --clear-lockout): %w", tp.desc, op, ErrLockout, err)
	case errors.Is(err, tpm2.TPMRCBadAuth), errors.Is(err, tpm2.TPMRCAuthFail):
		return fmt.Errorf("%s: %s: authorization refused (does the owner hierarchy have a password? vkey needs it empty): %w", tp.desc, op, err)
	case errors.Is(err, tpm2.TPMRCObjectMemory):
		return fmt.Errorf("%s: %s: the TPM has no free object slots (another program holds them): %w", tp.desc, op, err)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: %s: connection to the TPM closed: %w", tp.desc, op, err)
	}
	return fmt.Errorf("%s: %s: %w", tp.desc, op, err)
}

// isConnRefused reports whether err is a refused connection (a stale socket).
func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
