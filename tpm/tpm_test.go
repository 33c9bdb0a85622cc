package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/internal/swtpmtest"
	"github.com/vkey-dev/vkey/keystore"
)

// exercise runs the checks that do not need a TPM restart against tp.
func exercise(t *testing.T, tp *TPM) {
	t.Run("SignVerify", func(t *testing.T) { testSign(t, tp) })
	t.Run("Attributes", func(t *testing.T) { testAttributes(t, tp) })
	t.Run("SealUnseal", func(t *testing.T) { testSeal(t, tp) })
	t.Run("Certify", func(t *testing.T) { testCertify(t, tp) })
	t.Run("BadBlobs", func(t *testing.T) { testBadBlobs(t, tp) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, tp) })
}

// testConcurrent uses one TPM from several goroutines: the mutex must keep
// commands from interleaving and the object slots from overflowing.
func testConcurrent(t *testing.T, tp *TPM) {
	kp := tp.KeyProvider()
	blob, key, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(*ecdsa.PublicKey)
	sealed, err := tp.Sealer().Seal([]byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				msg := []byte{byte(g), byte(i)}
				k, err := kp.Load(keystore.AlgES256, blob)
				if err != nil {
					errs <- err
					return
				}
				sig, err := k.Sign(msg)
				if err != nil {
					errs <- err
					return
				}
				h := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(pub, h[:], sig) {
					errs <- errors.New("bad signature")
					return
				}
				if g%2 == 0 {
					if _, err := tp.Sealer().Unseal(sealed); err != nil {
						errs <- err
						return
					}
				} else if _, err := k.(keystore.TPMKey).CertifyTPM(msg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSwtpm(t *testing.T) {
	tp, _ := openSwtpm(t)
	exercise(t, tp)
}

func testSign(t *testing.T, tp *TPM) {
	kp := tp.KeyProvider()
	if kp.Name() != "tpm" || !kp.Supports(keystore.AlgES256) || kp.Supports(keystore.AlgEdDSA) {
		t.Fatalf("provider %q supports ES256=%v EdDSA=%v", kp.Name(), kp.Supports(keystore.AlgES256), kp.Supports(keystore.AlgEdDSA))
	}
	if _, _, err := kp.Generate(keystore.AlgEdDSA); err == nil {
		t.Error("Generate(EdDSA) succeeded")
	}
	blob, key, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	msg := []byte("authenticatorData || clientDataHash")
	sig, err := key.Sign(msg)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("Public() is %T", key.Public())
	}
	h := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		t.Fatal("signature does not verify")
	}
	h2 := sha256.Sum256([]byte("other"))
	if ecdsa.VerifyASN1(pub, h2[:], sig) {
		t.Fatal("signature verifies for another message")
	}
	// Loaded from the blob, the same key signs again (many times: the TPM's
	// object slots must not leak).
	k2, err := kp.Load(keystore.AlgES256, blob)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !k2.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("loaded key has another public key")
	}
	for i := range 5 {
		sig, err := k2.Sign(msg)
		if err != nil {
			t.Fatalf("Sign #%d: %v", i, err)
		}
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			t.Fatalf("signature #%d does not verify", i)
		}
	}
	// A second key is a different key.
	_, k3, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if k3.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("two generated keys are equal")
	}
}

func testAttributes(t *testing.T, tp *TPM) {
	blob, _, err := tp.KeyProvider().Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseBlob(blob, kindSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b.public)
	if err != nil {
		t.Fatal(err)
	}
	a := pub.ObjectAttributes
	// fixedTPM and fixedParent: the key can never be duplicated out of this
	// TPM; sensitiveDataOrigin: the TPM generated the private key itself.
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		t.Errorf("key is exportable: fixedTPM=%v fixedParent=%v sensitiveDataOrigin=%v", a.FixedTPM, a.FixedParent, a.SensitiveDataOrigin)
	}
	if !a.SignEncrypt || a.Decrypt || a.Restricted || !a.UserWithAuth || !a.NoDA || a.EncryptedDuplication {
		t.Errorf("unexpected attributes %+v", a)
	}
	if pub.Type != tpm2.TPMAlgECC || pub.NameAlg != tpm2.TPMAlgSHA256 {
		t.Errorf("type 0x%x nameAlg 0x%x", pub.Type, pub.NameAlg)
	}
	// No scheme in the key (TPM_ALG_NULL): each TPM2_Sign names ECDSA-SHA256.
	parms, err := pub.Parameters.ECCDetail()
	if err != nil || parms.CurveID != tpm2.TPMECCNistP256 || parms.Scheme.Scheme != tpm2.TPMAlgNull {
		t.Errorf("ECC parameters %+v, %v", parms, err)
	}
	// The blob carries only the TPM-wrapped private part, not a raw P-256
	// scalar: it is not 32 bytes and is bound to the SRK by the TPM's HMAC.
	if len(b.private) == 32 {
		t.Errorf("private part is 32 bytes: is it a raw key?")
	}
	if !bytes.Equal(b.parentName, tp.srkName.Buffer) {
		t.Error("blob does not name the SRK as its parent")
	}
}

func testSeal(t *testing.T, tp *TPM) {
	s := tp.Sealer()
	secret := bytes.Repeat([]byte{0xA5, 0x5A}, 16)
	blob, err := s.Seal(secret)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(blob, secret[:8]) {
		t.Fatal("sealed blob contains the secret")
	}
	got, err := s.Unseal(blob)
	if err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("Unseal = %x, want %x", got, secret)
	}
	for i := range 4 { // slots must not leak
		if _, err := s.Unseal(blob); err != nil {
			t.Fatalf("Unseal #%d: %v", i, err)
		}
	}
	if _, err := s.Seal(nil); err == nil {
		t.Error("Seal(empty) succeeded")
	}
	if _, err := s.Seal(make([]byte, MaxSealedSize+1)); err == nil {
		t.Error("Seal(too long) succeeded")
	}
	// A key blob is not a sealed blob and vice versa.
	kblob, _, err := tp.KeyProvider().Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unseal(kblob); !errors.Is(err, ErrBadBlob) {
		t.Errorf("Unseal(key blob) = %v, want ErrBadBlob", err)
	}
	if _, err := tp.KeyProvider().Load(keystore.AlgES256, blob); !errors.Is(err, ErrBadBlob) {
		t.Errorf("Load(sealed blob) = %v, want ErrBadBlob", err)
	}
}

func testCertify(t *testing.T, tp *TPM) {
	_, key, err := tp.KeyProvider().Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	tk, ok := key.(keystore.TPMKey)
	if !ok {
		t.Fatalf("%T is not a keystore.TPMKey", key)
	}
	qd := sha256.Sum256([]byte("attToBeSigned"))
	att, err := tk.CertifyTPM(qd[:])
	if err != nil {
		t.Fatalf("CertifyTPM: %v", err)
	}
	checkAttestation(t, att, qd[:], key.Public().(*ecdsa.PublicKey))

	// The AIK is the same every time (a primary key from a fixed template).
	att2, err := tk.CertifyTPM([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if !att2.AIKPublic.(*ecdsa.PublicKey).Equal(att.AIKPublic) {
		t.Error("AIK changed between calls")
	}
	if _, err := tk.CertifyTPM(make([]byte, 65)); err == nil {
		t.Error("CertifyTPM accepted 65 bytes of qualifying data")
	}
}

// checkAttestation verifies a TPM2_Certify result as a WebAuthn relying party
// would (WebAuthn section 8.3.2, verification procedure).
func checkAttestation(t *testing.T, att *keystore.TPMAttestation, qd []byte, credPub *ecdsa.PublicKey) {
	t.Helper()
	if att.SignatureAlg != keystore.AlgES256 {
		t.Errorf("SignatureAlg %d", att.SignatureAlg)
	}
	aik, ok := att.AIKPublic.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("AIKPublic is %T", att.AIKPublic)
	}
	h := sha256.Sum256(att.CertInfo)
	if !ecdsa.VerifyASN1(aik, h[:], att.Signature) {
		t.Fatal("AIK signature over certInfo does not verify")
	}
	// Parse TPMS_ATTEST by hand (TPM 2.0 Part 2, section 10.12.12).
	ci := att.CertInfo
	rd := func(n int) []byte {
		if len(ci) < n {
			t.Fatalf("certInfo truncated")
		}
		b := ci[:n]
		ci = ci[n:]
		return b
	}
	rd2b := func() []byte { return rd(int(binary.BigEndian.Uint16(rd(2)))) }
	if magic := binary.BigEndian.Uint32(rd(4)); magic != 0xff544347 {
		t.Errorf("magic 0x%08x", magic)
	}
	if typ := binary.BigEndian.Uint16(rd(2)); typ != 0x8017 {
		t.Errorf("type 0x%04x, want TPM_ST_ATTEST_CERTIFY", typ)
	}
	rd2b() // qualifiedSigner
	if extra := rd2b(); !bytes.Equal(extra, qd) {
		t.Errorf("extraData %x, want %x", extra, qd)
	}
	rd(17) // clockInfo
	rd(8)  // firmwareVersion
	name := rd2b()
	rd2b() // qualifiedName
	if len(ci) != 0 {
		t.Errorf("%d trailing bytes in certInfo", len(ci))
	}
	ph := sha256.Sum256(att.PubArea)
	want := append([]byte{0x00, 0x0b}, ph[:]...)
	if !bytes.Equal(name, want) {
		t.Errorf("attested name %x, want nameAlg||SHA-256(pubArea) %x", name, want)
	}
	// pubArea carries the credential public key.
	pub, err := signingKeyPublic(att.PubArea)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(credPub) {
		t.Error("pubArea holds another key")
	}
	if len(att.Manufacturer) != 11 || att.Manufacturer[:3] != "id:" || len(att.Version) != 11 || att.Version[:3] != "id:" {
		t.Errorf("manufacturer %q version %q", att.Manufacturer, att.Version)
	}
	t.Logf("TPM manufacturer %s model %q version %s", att.Manufacturer, att.Model, att.Version)
}

func testBadBlobs(t *testing.T, tp *TPM) {
	kp := tp.KeyProvider()
	blob, _, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Load(keystore.AlgEdDSA, blob); err == nil {
		t.Error("Load(EdDSA) succeeded")
	}
	// Every truncation and every single-byte corruption is refused or, if it
	// only touches bytes the TPM checks, fails at Sign; nothing panics.
	for i := range len(blob) {
		if _, err := kp.Load(keystore.AlgES256, blob[:i]); err == nil {
			t.Fatalf("Load(truncated to %d) succeeded", i)
		}
	}
	if _, err := kp.Load(keystore.AlgES256, append(append([]byte(nil), blob...), 0)); err == nil {
		t.Error("Load(trailing byte) succeeded")
	}
	b, _ := parseBlob(blob, kindSigningKey)
	privOff := len(blob) - len(b.private)
	bad := append([]byte(nil), blob...)
	bad[privOff+len(b.private)/2] ^= 0x01 // inside the encrypted sensitive area
	k, err := kp.Load(keystore.AlgES256, bad)
	if err != nil {
		t.Fatalf("Load(corrupted private) = %v; the check belongs to the TPM", err)
	}
	if _, err := k.Sign([]byte("m")); !errors.Is(err, ErrBadBlob) {
		t.Errorf("Sign with corrupted private = %v, want ErrBadBlob", err)
	}
	for i := range len(blob) {
		bad := append([]byte(nil), blob...)
		bad[i] ^= 0x80
		k, err := kp.Load(keystore.AlgES256, bad)
		if err != nil {
			continue
		}
		if i < privOff {
			// A changed public area must not load into the TPM.
			if _, err := k.Sign([]byte("m")); err == nil {
				t.Errorf("corrupting byte %d of the public part went unnoticed", i)
			}
		}
	}
	if _, err := tp.Sealer().Unseal([]byte{1, 2, 0, 0}); !errors.Is(err, ErrBadBlob) {
		t.Errorf("Unseal(garbage) = %v", err)
	}
}

// TestRestartAndForeign signs with a stored blob after swtpm restarts on the
// same state, and checks that another TPM (another swtpm state) refuses it.
func TestRestartAndForeign(t *testing.T) {
	dir := swtpmtest.NewStateDir(t)
	p := swtpmtest.StartDir(t, dir)
	tp, err := Open(p.Spec())
	if err != nil {
		t.Fatal(err)
	}
	blob, key, err := tp.KeyProvider().Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := tp.Sealer().Seal([]byte("master key"))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(*ecdsa.PublicKey)
	if err := tp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := key.Sign([]byte("m")); !errors.Is(err, ErrClosed) {
		t.Errorf("Sign after Close = %v, want ErrClosed", err)
	}
	if err := tp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	p.Stop()

	// Same state: same SRK, the blob still works.
	p = swtpmtest.StartDir(t, dir)
	tp, err = Open(p.Spec())
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	k, err := tp.KeyProvider().Load(keystore.AlgES256, blob)
	if err != nil {
		t.Fatalf("Load after restart: %v", err)
	}
	msg := []byte("after restart")
	sig, err := k.Sign(msg)
	if err != nil {
		t.Fatalf("Sign after restart: %v", err)
	}
	h := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		t.Fatal("signature after restart does not verify")
	}
	if got, err := tp.Sealer().Unseal(sealed); err != nil || string(got) != "master key" {
		t.Fatalf("Unseal after restart = %q, %v", got, err)
	}

	// Another TPM: refused with ErrForeignBlob, by Load and by Unseal.
	other, _ := openSwtpm(t)
	if _, err := other.KeyProvider().Load(keystore.AlgES256, blob); !errors.Is(err, ErrForeignBlob) {
		t.Errorf("Load on another TPM = %v, want ErrForeignBlob", err)
	} else {
		t.Logf("another TPM says: %v", err)
	}
	if _, err := other.Sealer().Unseal(sealed); !errors.Is(err, ErrForeignBlob) {
		t.Errorf("Unseal on another TPM = %v, want ErrForeignBlob", err)
	}
	// Even if the parent name is forged to match, the TPM refuses the blob.
	b, _ := parseBlob(blob, kindSigningKey)
	b.parentName = other.srkName.Buffer
	fk, err := other.KeyProvider().Load(keystore.AlgES256, b.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fk.Sign(msg); !errors.Is(err, ErrBadBlob) {
		t.Errorf("Sign with a forged parent name = %v, want ErrBadBlob", err)
	} else {
		t.Logf("forged blob: %v", err)
	}
}

// TestSwtpmES384 (issue 13): where the TPM has P-384 (swtpm does), the
// provider makes ES384 keys that sign SHA-384 digests, load from their
// blob as ES384 (and not as ES256), and flush (many signatures in a row).
func TestSwtpmES384(t *testing.T) {
	tp, _ := openSwtpm(t)
	kp := tp.KeyProvider()
	if !kp.Supports(keystore.AlgES384) || kp.Supports(keystore.AlgEdDSA) {
		t.Fatalf("ES384 %v, EdDSA %v: want ES384 only", kp.Supports(keystore.AlgES384), kp.Supports(keystore.AlgEdDSA))
	}
	blob, key, err := kp.Generate(keystore.AlgES384)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() || key.Algorithm() != keystore.AlgES384 {
		t.Fatalf("key %T alg %d: want a P-384 ES384 key", key.Public(), key.Algorithm())
	}
	loaded, err := kp.Load(keystore.AlgES384, blob)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("authenticatorData || clientDataHash")
	h := sha512.Sum384(msg)
	for i := range 5 {
		sig, err := loaded.Sign(msg)
		if err != nil {
			t.Fatalf("Sign #%d: %v", i, err)
		}
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			t.Fatalf("signature #%d does not verify over SHA-384", i)
		}
	}
	if _, err := kp.Load(keystore.AlgES256, blob); err == nil {
		t.Error("a P-384 blob loads as ES256")
	}
}

// TestSwtpmCredentialKeyScheme: new credential keys name no scheme
// (TPM_ALG_NULL), so relying-party parsers of the tpm statement's pubArea
// (python-fido2, @simplewebauthn/server) read it; keys made before with the
// ECDSA scheme in the key still load and sign.
func TestSwtpmCredentialKeyScheme(t *testing.T) {
	tp, _ := openSwtpm(t)
	p := tp.KeyProvider().(provider)
	for _, tc := range []struct {
		alg    keystore.Algorithm
		legacy tpm2.TPMTPublic
		hash   func([]byte) []byte
	}{
		{keystore.AlgES256, legacyCredentialKeyTemplate(), func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }},
		{keystore.AlgES384, legacyCredentialKeyTemplateP384(), func(b []byte) []byte { h := sha512.Sum384(b); return h[:] }},
	} {
		_, key, err := p.Generate(tc.alg)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](key.(*Key).PubArea())
		if err != nil {
			t.Fatal(err)
		}
		parms, err := pub.Parameters.ECCDetail()
		if err != nil || parms.Scheme.Scheme != tpm2.TPMAlgNull {
			t.Errorf("alg %d: pubArea scheme %+v (%v), want TPM_ALG_NULL", tc.alg, parms, err)
		}
		blob, _, err := p.generate(tc.alg, tc.legacy)
		if err != nil {
			t.Fatal(err)
		}
		k, err := p.Load(tc.alg, blob)
		if err != nil {
			t.Fatalf("alg %d: a key with the ECDSA scheme in it no longer loads: %v", tc.alg, err)
		}
		msg := []byte("authenticatorData || clientDataHash")
		sig, err := k.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(k.Public().(*ecdsa.PublicKey), tc.hash(msg), sig) {
			t.Errorf("alg %d: the legacy key's signature does not verify", tc.alg)
		}
	}
}
