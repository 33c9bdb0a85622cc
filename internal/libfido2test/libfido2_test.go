//go:build libfido2

package libfido2test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"
	libfido2 "github.com/keys-pub/go-libfido2"
	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
)

// The tests run `vkey run --transport pty --presence auto --ephemeral` and
// open the pty with go-libfido2, as they would a /dev/hidrawN: libfido2
// falls back to 64-byte reports when the report-descriptor ioctl fails.
// With VKEY_LIBFIDO2_TRANSPORT=uhid (the VM guest, internal/browsertest)
// the key is a real hidraw device that go-libfido2 finds by its own
// enumeration (DeviceLocations).

// device starts a fresh key and returns go-libfido2's handle on it.
func device(t *testing.T) (*libfido2.Device, string) {
	t.Helper()
	transport := "pty"
	if os.Getenv("VKEY_LIBFIDO2_TRANSPORT") == "uhid" {
		transport = "uhid"
	}
	k := keyproc.Start(t, keyproc.Options{}, "--transport", transport, "--presence", "auto", "--ephemeral", "--name", "lf2")
	path := k.Where
	if transport == "uhid" {
		path = enumerate(t, k.Where)
	}
	d, err := libfido2.NewDevice(path)
	if err != nil {
		t.Fatalf("libfido2.NewDevice(%s): %v", path, err)
	}
	return d, path
}

// record writes t's line of the client summary (make test prints it).
func record(t *testing.T, what string) {
	transport := "pty"
	if os.Getenv("VKEY_LIBFIDO2_TRANSPORT") == "uhid" {
		transport = "uhid"
	}
	clientsummary.Record(t, "go-libfido2, "+transport, what)
}

// enumerate finds the key among the FIDO devices libfido2 lists, by the
// path the key reported and its USB IDs.
func enumerate(t *testing.T, want string) string {
	t.Helper()
	locs, err := libfido2.DeviceLocations()
	if err != nil {
		t.Fatalf("DeviceLocations: %v", err)
	}
	for _, l := range locs {
		if l.Path == want && uint16(l.VendorID) == 0x1209 && uint16(l.ProductID) == 0x7679 {
			return l.Path
		}
	}
	t.Fatalf("libfido2 does not list %s among %d devices", want, len(locs))
	return ""
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLibfido2Info(t *testing.T) {
	record(t, "info: versions, extensions, options, AAGUID, PIN protocols")
	d, _ := device(t)
	typ, err := d.Type()
	if err != nil || typ != libfido2.FIDO2 {
		t.Fatalf("Type() = %q, %v; want fido2", typ, err)
	}
	hi, err := d.CTAPHIDInfo()
	if err != nil {
		t.Fatal(err)
	}
	if hi.Protocol != 2 {
		t.Errorf("CTAPHID protocol %d, want 2", hi.Protocol)
	}
	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"FIDO_2_0", "FIDO_2_1"} {
		if !slices.Contains(info.Versions, v) {
			t.Errorf("versions %v lack %s", info.Versions, v)
		}
	}
	for _, e := range []string{"hmac-secret", "credProtect", "largeBlobKey"} {
		if !slices.Contains(info.Extensions, e) {
			t.Errorf("extensions %v lack %s", info.Extensions, e)
		}
	}
	opts := map[string]libfido2.OptionValue{}
	for _, o := range info.Options {
		opts[o.Name] = o.Value
	}
	for name, want := range map[string]libfido2.OptionValue{"rk": libfido2.True, "up": libfido2.True, "clientPin": libfido2.False, "credMgmt": libfido2.True, "largeBlobs": libfido2.True} {
		if opts[name] != want {
			t.Errorf("option %s = %q, want %q (all: %v)", name, opts[name], want, info.Options)
		}
	}
	if len(info.AAGUID) != 16 {
		t.Errorf("AAGUID %x is not 16 bytes", info.AAGUID)
	}
	if !bytes.Contains(info.Protocols, []byte{2}) {
		t.Errorf("PIN/UV protocols %v lack 2", info.Protocols)
	}
}

func TestLibfido2PIN(t *testing.T) {
	record(t, "PIN set/change/retries/policy")
	d, _ := device(t)
	if err := d.SetPIN("1234", ""); err != nil {
		t.Fatalf("SetPIN: %v", err)
	}
	if n, err := d.RetryCount(); err != nil || n != 8 {
		t.Fatalf("RetryCount() = %d, %v; want 8", n, err)
	}
	if err := d.SetPIN("abcd", "0000"); !errors.Is(errors.Unwrap(err), libfido2.ErrPinInvalid) && !errors.Is(err, libfido2.ErrPinInvalid) {
		t.Fatalf("SetPIN with a wrong old PIN: %v, want %v", err, libfido2.ErrPinInvalid)
	}
	if n, err := d.RetryCount(); err != nil || n != 7 {
		t.Fatalf("after a wrong PIN, RetryCount() = %d, %v; want 7", n, err)
	}
	if err := d.SetPIN("12", "1234"); !isErr(err, libfido2.ErrPinPolicyViolation) {
		t.Fatalf("SetPIN with a 2-digit PIN: %v, want %v", err, libfido2.ErrPinPolicyViolation)
	}
	if err := d.SetPIN("abcd", "1234"); err != nil {
		t.Fatalf("change PIN: %v", err)
	}
	if n, err := d.RetryCount(); err != nil || n != 8 {
		t.Fatalf("after the right PIN, RetryCount() = %d, %v; want 8 again", n, err)
	}
	// A credential made with the new PIN is user-verified.
	att, err := d.MakeCredential(random(t, 32), libfido2.RelyingParty{ID: "pin.example"},
		libfido2.User{ID: random(t, 16), Name: "alice"}, libfido2.ES256, "abcd", nil)
	if err != nil {
		t.Fatalf("MakeCredential with the PIN: %v", err)
	}
	if ad := authData(t, att.AuthData); ad[32]&flagUV == 0 {
		t.Errorf("flags %#x lack UV after a PIN", ad[32])
	}
	if _, err := d.MakeCredential(random(t, 32), libfido2.RelyingParty{ID: "pin.example"},
		libfido2.User{ID: random(t, 16), Name: "alice"}, libfido2.ES256, "1234", nil); !isErr(err, libfido2.ErrPinInvalid) {
		t.Fatalf("MakeCredential with the old PIN: %v, want %v", err, libfido2.ErrPinInvalid)
	}
}

func isErr(err, want error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err == want {
			return true
		}
	}
	return false
}

// Authenticator data flags (WebAuthn section 6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
	flagED = 0x80
)

// authData decodes libfido2's authenticator data, which it hands out
// CBOR-encoded (a byte string), and checks its length.
func authData(t *testing.T, enc []byte) []byte {
	t.Helper()
	var ad []byte
	if err := cbor.Unmarshal(enc, &ad); err != nil {
		t.Fatalf("authenticator data is not a CBOR byte string: %v", err)
	}
	if len(ad) < 37 {
		t.Fatalf("authenticator data is %d bytes", len(ad))
	}
	return ad
}

// verify checks sig over authData || clientDataHash with libfido2's
// public key (ES256: x||y, EdDSA: the 32-byte key).
func verify(t *testing.T, typ libfido2.CredentialType, pub, ad, cdh, sig []byte) {
	t.Helper()
	msg := append(slices.Clone(ad), cdh...)
	switch typ {
	case libfido2.ES256:
		if len(pub) != 64 {
			t.Fatalf("ES256 public key is %d bytes", len(pub))
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, pub...))
		if err != nil {
			t.Fatalf("ES256 public key: %v", err)
		}
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(k, h[:], sig) {
			t.Fatal("ES256 signature does not verify")
		}
	case libfido2.EDDSA:
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
			t.Fatal("EdDSA signature does not verify")
		}
	default:
		t.Fatalf("unexpected type %v", typ)
	}
}

// checkAttestation verifies a packed attestation (WebAuthn section 8.2)
// with the certificate's key, and the authenticator data's rpIdHash,
// flags and credential ID.
func checkAttestation(t *testing.T, rpID string, cdh []byte, att *libfido2.Attestation) []byte {
	t.Helper()
	ad := authData(t, att.AuthData)
	if h := sha256.Sum256([]byte(rpID)); !bytes.Equal(ad[:32], h[:]) {
		t.Errorf("rpIdHash %x, want sha256(%q)", ad[:32], rpID)
	}
	if ad[32]&(flagUP|flagAT) != flagUP|flagAT {
		t.Errorf("flags %#x lack UP or AT", ad[32])
	}
	if len(ad) < 55 {
		t.Fatalf("authenticator data of %d bytes has no attested credential", len(ad))
	}
	idLen := int(binary.BigEndian.Uint16(ad[53:55]))
	if len(ad) < 55+idLen || !bytes.Equal(ad[55:55+idLen], att.CredentialID) {
		t.Errorf("attested credential ID differs from the one libfido2 reports")
	}
	if att.Format != "packed" {
		t.Fatalf("attestation format %q, want packed", att.Format)
	}
	msg := append(slices.Clone(ad), cdh...)
	h := sha256.Sum256(msg)
	if len(att.Cert) > 0 {
		cert, err := x509.ParseCertificate(att.Cert)
		if err != nil {
			t.Fatalf("attestation certificate: %v", err)
		}
		k, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || !ecdsa.VerifyASN1(k, h[:], att.Sig) {
			t.Fatal("packed attestation signature does not verify with the certificate's key")
		}
	} else {
		verify(t, att.CredentialType, att.PubKey, ad, cdh, att.Sig) // self attestation
	}
	return ad
}

func TestLibfido2MakeAndGet(t *testing.T) {
	record(t, "make + get, ES256 and EdDSA, discoverable or not, attestation and signatures verified, another RP refused")
	d, _ := device(t)
	for _, typ := range []libfido2.CredentialType{libfido2.ES256, libfido2.EDDSA} {
		for _, rk := range []bool{false, true} {
			name := typ.String()
			if rk {
				name += "/discoverable"
			}
			t.Run(name, func(t *testing.T) {
				rp := "mg-" + typ.String() + ".example"
				if rk {
					rp = "rk-" + rp
				}
				user := libfido2.User{ID: random(t, 16), Name: "alice", DisplayName: "Alice"}
				opt := libfido2.False
				if rk {
					opt = libfido2.True
				}
				cdh := random(t, 32)
				att, err := d.MakeCredential(cdh, libfido2.RelyingParty{ID: rp, Name: "Example"}, user, typ, "", &libfido2.MakeCredentialOpts{RK: opt})
				if err != nil {
					t.Fatalf("MakeCredential: %v", err)
				}
				if att.CredentialType != typ {
					t.Fatalf("credential type %v, want %v", att.CredentialType, typ)
				}
				checkAttestation(t, rp, cdh, att)

				allow := [][]byte{att.CredentialID}
				if rk {
					allow = nil // discoverable: the key finds it
				}
				cdh = random(t, 32)
				as, err := d.Assertion(rp, cdh, allow, "", &libfido2.AssertionOpts{UP: libfido2.True})
				if err != nil {
					t.Fatalf("Assertion: %v", err)
				}
				ad := authData(t, as.AuthDataCBOR)
				if h := sha256.Sum256([]byte(rp)); !bytes.Equal(ad[:32], h[:]) {
					t.Errorf("assertion rpIdHash %x, want sha256(%q)", ad[:32], rp)
				}
				if ad[32]&flagUP == 0 {
					t.Errorf("assertion flags %#x lack UP", ad[32])
				}
				verify(t, typ, att.PubKey, ad, cdh, as.Sig)
				if !bytes.Equal(as.CredentialID, att.CredentialID) {
					t.Errorf("assertion names credential %x, want %x", as.CredentialID, att.CredentialID)
				}
				if rk && !bytes.Equal(as.User.ID, user.ID) {
					t.Errorf("discoverable assertion's user ID %x, want %x", as.User.ID, user.ID)
				}
				// Another RP cannot use the credential ID.
				if _, err := d.Assertion("other.example", random(t, 32), [][]byte{att.CredentialID}, "", nil); !isErr(err, libfido2.ErrNoCredentials) {
					t.Errorf("the credential used for another RP: %v, want %v", err, libfido2.ErrNoCredentials)
				}
			})
		}
	}
}

func TestLibfido2HMACSecret(t *testing.T) {
	record(t, "hmac-secret: same salt same output, another salt another")
	d, _ := device(t)
	rp := "hmac.example"
	att, err := d.MakeCredential(random(t, 32), libfido2.RelyingParty{ID: rp}, libfido2.User{ID: random(t, 16), Name: "alice"},
		libfido2.ES256, "", &libfido2.MakeCredentialOpts{Extensions: []libfido2.Extension{libfido2.HMACSecretExtension}})
	if err != nil {
		t.Fatalf("MakeCredential with hmac-secret: %v", err)
	}
	if ad := authData(t, att.AuthData); ad[32]&flagED == 0 {
		t.Errorf("flags %#x lack ED: no hmac-secret output in the extensions", ad[32])
	}
	get := func(salt []byte) []byte {
		t.Helper()
		as, err := d.Assertion(rp, random(t, 32), [][]byte{att.CredentialID}, "", &libfido2.AssertionOpts{
			Extensions: []libfido2.Extension{libfido2.HMACSecretExtension}, HMACSalt: salt, UP: libfido2.True})
		if err != nil {
			t.Fatalf("Assertion with hmac-secret: %v", err)
		}
		if len(as.HMACSecret) != 32 {
			t.Fatalf("hmac-secret output is %d bytes, want 32", len(as.HMACSecret))
		}
		return as.HMACSecret
	}
	salt1, salt2 := random(t, 32), random(t, 32)
	a, b, c := get(salt1), get(salt1), get(salt2)
	if !bytes.Equal(a, b) {
		t.Error("the same salt gave two outputs")
	}
	if bytes.Equal(a, c) {
		t.Error("two salts gave the same output")
	}
}

func TestLibfido2CredentialManagement(t *testing.T) {
	record(t, "credential management: metadata, RPs, credentials, delete")
	d, _ := device(t)
	const pin = "4321"
	if err := d.SetPIN(pin, ""); err != nil {
		t.Fatal(err)
	}
	users := map[string][]byte{}
	for _, rp := range []string{"a.example", "b.example", "b.example"} {
		u := libfido2.User{ID: random(t, 16), Name: "user" + string(rune('0'+len(users))), DisplayName: "User"}
		att, err := d.MakeCredential(random(t, 32), libfido2.RelyingParty{ID: rp, Name: rp}, u, libfido2.ES256, pin, &libfido2.MakeCredentialOpts{RK: libfido2.True})
		if err != nil {
			t.Fatalf("MakeCredential(%s): %v", rp, err)
		}
		users[string(att.CredentialID)] = u.ID
	}
	info, err := d.CredentialsInfo(pin)
	if err != nil {
		t.Fatalf("CredentialsInfo: %v", err)
	}
	if info.RKExisting != 3 || info.RKRemaining <= 0 {
		t.Fatalf("CredentialsInfo = %+v, want 3 existing and room for more", info)
	}
	rps, err := d.RelyingParties(pin)
	if err != nil {
		t.Fatalf("RelyingParties: %v", err)
	}
	var ids []string
	for _, rp := range rps {
		ids = append(ids, rp.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a.example", "b.example"}) {
		t.Fatalf("relying parties %v", ids)
	}
	creds, err := d.Credentials("b.example", pin)
	if err != nil {
		t.Fatalf("Credentials: %v", err)
	}
	if len(creds) != 2 {
		t.Fatalf("b.example has %d credentials, want 2", len(creds))
	}
	for _, c := range creds {
		if want, ok := users[string(c.ID)]; !ok || !bytes.Equal(c.User.ID, want) {
			t.Errorf("credential %x with user %x is not one that was made", c.ID, c.User.ID)
		}
	}
	if err := d.DeleteCredential(creds[0].ID, pin); err != nil {
		t.Fatalf("DeleteCredential: %v", err)
	}
	left, err := d.Credentials("b.example", pin)
	if err != nil || len(left) != 1 || !bytes.Equal(left[0].ID, creds[1].ID) {
		t.Fatalf("after the delete, b.example has %v (%v), want only %x", left, err, creds[1].ID)
	}
	if _, err := d.Assertion("b.example", random(t, 32), [][]byte{creds[0].ID}, pin, nil); !isErr(err, libfido2.ErrNoCredentials) {
		t.Errorf("the deleted credential still signs: %v", err)
	}
	if _, err := d.CredentialsInfo("0000"); !isErr(err, libfido2.ErrPinInvalid) {
		t.Errorf("CredentialsInfo with a wrong PIN: %v, want %v", err, libfido2.ErrPinInvalid)
	}
}

func TestLibfido2LargeBlobs(t *testing.T) {
	record(t, "large blobs (libfido2 C API through cgo)")
	_, path := device(t)
	d, _ := libfido2.NewDevice(path)
	const pin = "2468"
	if err := d.SetPIN(pin, ""); err != nil {
		t.Fatal(err)
	}
	_, key1, err := makeLargeBlobCredential(path, "blob.example", random(t, 32), random(t, 16), pin)
	if err != nil {
		t.Fatal(err)
	}
	_, key2, err := makeLargeBlobCredential(path, "blob.example", random(t, 32), random(t, 16), pin)
	if err != nil {
		t.Fatal(err)
	}
	if len(key1) != 32 || bytes.Equal(key1, key2) {
		t.Fatalf("largeBlobKeys %x and %x: want two distinct 32-byte keys", key1, key2)
	}
	blob1 := bytes.Repeat([]byte("vkey large blob "), 100) // 1600 bytes: several fragments
	blob2 := []byte("the second credential's blob")
	if err := largeBlobSet(path, key1, blob1, pin); err != nil {
		t.Fatal(err)
	}
	if err := largeBlobSet(path, key2, blob2, pin); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ key, want []byte }{{key1, blob1}, {key2, blob2}} {
		got, err := largeBlobGet(path, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("blob read back as %q, want %q", got, c.want)
		}
	}
	if err := largeBlobRemove(path, key1, pin); err != nil {
		t.Fatal(err)
	}
	if _, err := largeBlobGet(path, key1); err == nil {
		t.Error("a removed blob can still be read")
	}
	if got, err := largeBlobGet(path, key2); err != nil || !bytes.Equal(got, blob2) {
		t.Errorf("removing one blob changed the other: %q, %v", got, err)
	}
}

func TestLibfido2Reset(t *testing.T) {
	record(t, "reset")
	d, _ := device(t) // a fresh key: a reset is allowed within 10 s of power-up
	if err := d.SetPIN("1234", ""); err != nil {
		t.Fatal(err)
	}
	att, err := d.MakeCredential(random(t, 32), libfido2.RelyingParty{ID: "reset.example"}, libfido2.User{ID: random(t, 16), Name: "alice"},
		libfido2.ES256, "1234", &libfido2.MakeCredentialOpts{RK: libfido2.True})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	info, err := d.Info()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range info.Options {
		if o.Name == "clientPin" && o.Value != libfido2.False {
			t.Errorf("after a reset clientPin = %s, want false", o.Value)
		}
	}
	if _, err := d.Assertion("reset.example", random(t, 32), [][]byte{att.CredentialID}, "", nil); !isErr(err, libfido2.ErrNoCredentials) {
		t.Errorf("a credential survived the reset: %v", err)
	}
}
