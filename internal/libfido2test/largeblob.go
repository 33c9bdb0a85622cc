//go:build libfido2 && cgo

package libfido2test

/*
#cgo LDFLAGS: -lfido2
#include <fido.h>
#include <stdlib.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// go-libfido2 has no binding for large blobs, so this file calls the same
// libfido2 directly: make a discoverable credential with the largeBlobKey
// extension (CTAP 2.1 section 12.3), then store and read the blob with
// fido_dev_largeblob_set/get (section 6.10).

// fidoError is a libfido2 return code.
type fidoError struct {
	op   string
	code C.int
}

func (e *fidoError) Error() string {
	return fmt.Sprintf("%s: %s (%d)", e.op, C.GoString(C.fido_strerr(e.code)), int(e.code))
}

func check(op string, code C.int) error {
	if code == C.FIDO_OK {
		return nil
	}
	return &fidoError{op: op, code: code}
}

// openDev opens the FIDO2 device at path.
func openDev(path string) (*C.fido_dev_t, error) {
	dev := C.fido_dev_new()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if err := check("fido_dev_open", C.fido_dev_open(dev, cpath)); err != nil {
		C.fido_dev_free(&dev)
		return nil, err
	}
	return dev, nil
}

func closeDev(dev *C.fido_dev_t) {
	C.fido_dev_close(dev)
	C.fido_dev_free(&dev)
}

// cbytes returns a C pointer to b's first byte (nil for an empty slice);
// the caller frees it.
func cbytes(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(C.CBytes(b))
}

func cfree(p *C.uchar) {
	if p != nil {
		C.free(unsafe.Pointer(p))
	}
}

// makeLargeBlobCredential makes a discoverable ES256 credential for rpID
// with the largeBlobKey extension and returns its credential ID and its
// largeBlobKey.
func makeLargeBlobCredential(path, rpID string, cdh, userID []byte, pin string) (credID, key []byte, err error) {
	dev, err := openDev(path)
	if err != nil {
		return nil, nil, err
	}
	defer closeDev(dev)
	cred := C.fido_cred_new()
	defer C.fido_cred_free(&cred)
	ccdh, cuid := cbytes(cdh), cbytes(userID)
	defer cfree(ccdh)
	defer cfree(cuid)
	crp, cname, cpin := C.CString(rpID), C.CString("alice"), C.CString(pin)
	defer C.free(unsafe.Pointer(crp))
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(cpin))
	for _, step := range []struct {
		op   string
		code C.int
	}{
		{"fido_cred_set_clientdata_hash", C.fido_cred_set_clientdata_hash(cred, ccdh, C.size_t(len(cdh)))},
		{"fido_cred_set_rp", C.fido_cred_set_rp(cred, crp, nil)},
		{"fido_cred_set_user", C.fido_cred_set_user(cred, cuid, C.size_t(len(userID)), cname, nil, nil)},
		{"fido_cred_set_type", C.fido_cred_set_type(cred, C.COSE_ES256)},
		{"fido_cred_set_rk", C.fido_cred_set_rk(cred, C.FIDO_OPT_TRUE)},
		{"fido_cred_set_extensions", C.fido_cred_set_extensions(cred, C.FIDO_EXT_LARGEBLOB_KEY)},
	} {
		if err := check(step.op, step.code); err != nil {
			return nil, nil, err
		}
	}
	if err := check("fido_dev_make_cred", C.fido_dev_make_cred(dev, cred, cpin)); err != nil {
		return nil, nil, err
	}
	credID = C.GoBytes(unsafe.Pointer(C.fido_cred_id_ptr(cred)), C.int(C.fido_cred_id_len(cred)))
	key = C.GoBytes(unsafe.Pointer(C.fido_cred_largeblob_key_ptr(cred)), C.int(C.fido_cred_largeblob_key_len(cred)))
	return credID, key, nil
}

// largeBlobSet stores blob under key (fido_dev_largeblob_set: read the
// array, replace the entry, write it back with a pinUvAuthToken).
func largeBlobSet(path string, key, blob []byte, pin string) error {
	dev, err := openDev(path)
	if err != nil {
		return err
	}
	defer closeDev(dev)
	ckey, cblob := cbytes(key), cbytes(blob)
	defer cfree(ckey)
	defer cfree(cblob)
	cpin := C.CString(pin)
	defer C.free(unsafe.Pointer(cpin))
	return check("fido_dev_largeblob_set", C.fido_dev_largeblob_set(dev, ckey, C.size_t(len(key)), cblob, C.size_t(len(blob)), cpin))
}

// largeBlobGet reads the blob stored under key.
func largeBlobGet(path string, key []byte) ([]byte, error) {
	dev, err := openDev(path)
	if err != nil {
		return nil, err
	}
	defer closeDev(dev)
	ckey := cbytes(key)
	defer cfree(ckey)
	var out *C.uchar
	var n C.size_t
	if err := check("fido_dev_largeblob_get", C.fido_dev_largeblob_get(dev, ckey, C.size_t(len(key)), &out, &n)); err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), C.int(n)), nil
}

// largeBlobRemove removes the blob stored under key.
func largeBlobRemove(path string, key []byte, pin string) error {
	dev, err := openDev(path)
	if err != nil {
		return err
	}
	defer closeDev(dev)
	ckey := cbytes(key)
	defer cfree(ckey)
	cpin := C.CString(pin)
	defer C.free(unsafe.Pointer(cpin))
	return check("fido_dev_largeblob_remove", C.fido_dev_largeblob_remove(dev, ckey, C.size_t(len(key)), cpin))
}
