package tpm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/keystore"
)

// TestSwtpmRSA (issue 13): where the TPM has RSA-2048 (swtpm does), the
// provider makes RS256 and PS256 keys inside it: non-exportable, no scheme
// in the key, exponent 2^16+1; RS256 signs PKCS #1 v1.5 and PS256 signs
// PSS with a 32-byte salt (RFC 8230 section 2) over SHA-256; the blob
// loads back, signs many times (each use flushes) and the AIK certifies
// the key.
func TestSwtpmRSA(t *testing.T) {
	tp, _ := openSwtpm(t)
	testRSA(t, tp)
}

// testRSA is TestSwtpmRSA on tp.
func testRSA(t *testing.T, tp *TPM) {
	kp := tp.KeyProvider()
	if !kp.Supports(keystore.AlgRS256) || !kp.Supports(keystore.AlgPS256) {
		t.Fatalf("RS256 %v, PS256 %v: swtpm has RSA-2048", kp.Supports(keystore.AlgRS256), kp.Supports(keystore.AlgPS256))
	}
	msg := []byte("authenticatorData || clientDataHash")
	h := sha256.Sum256(msg)
	for _, alg := range []keystore.Algorithm{keystore.AlgRS256, keystore.AlgPS256} {
		start := time.Now()
		blob, key, err := kp.Generate(alg)
		if err != nil {
			t.Fatalf("Generate(%d): %v", alg, err)
		}
		created := time.Since(start)
		pub, ok := key.Public().(*rsa.PublicKey)
		if !ok || pub.N.BitLen() != 2048 || pub.E != 65537 || key.Algorithm() != alg {
			t.Fatalf("key %T alg %d: want an RSA-2048 key of alg %d", key.Public(), key.Algorithm(), alg)
		}
		verify := func(sig []byte) error {
			if alg == keystore.AlgRS256 {
				return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig)
			}
			return rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
		}
		loaded, err := kp.Load(alg, blob)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.Public().(*rsa.PublicKey).Equal(pub) {
			t.Fatal("the loaded key has another public key")
		}
		start = time.Now()
		const n = 5
		for i := range n {
			sig, err := loaded.Sign(msg)
			if err != nil {
				t.Fatalf("Sign #%d: %v", i, err)
			}
			if err := verify(sig); err != nil {
				t.Fatalf("alg %d: signature #%d does not verify: %v", alg, i, err)
			}
		}
		t.Logf("alg %d: created in %v, signs in %v, blob %d bytes", alg, created.Round(time.Millisecond), (time.Since(start) / n).Round(time.Millisecond), len(blob))

		b, err := parseBlob(blob, kindSigningKey)
		if err != nil {
			t.Fatal(err)
		}
		pa, err := tpm2.Unmarshal[tpm2.TPMTPublic](b.public)
		if err != nil {
			t.Fatal(err)
		}
		a := pa.ObjectAttributes
		if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || a.Restricted || a.Decrypt || !a.SignEncrypt {
			t.Errorf("attributes %+v: want a non-exportable unrestricted signing key", a)
		}
		parms, err := pa.Parameters.RSADetail()
		if err != nil || parms.Scheme.Scheme != tpm2.TPMAlgNull || parms.KeyBits != 2048 || parms.Exponent != 0 || parms.Symmetric.Algorithm != tpm2.TPMAlgNull {
			t.Errorf("RSA parameters %+v (%v): want scheme TPM_ALG_NULL, 2048 bits, default exponent", parms, err)
		}
		att, err := key.(keystore.TPMKey).CertifyTPM([]byte("qualifying data"))
		if err != nil {
			t.Fatalf("CertifyTPM: %v", err)
		}
		if string(att.PubArea) != string(b.public) {
			t.Error("the attested pubArea is not the key's")
		}
		// The key signs only for the algorithms of its shape.
		if _, err := kp.Load(keystore.AlgES256, blob); err == nil {
			t.Error("an RSA blob loads as ES256")
		}
	}
	// A P-256 blob is no RSA key.
	blob, _, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kp.Load(keystore.AlgRS256, blob); err == nil {
		t.Error("a P-256 blob loads as RS256")
	}
}

// TestSwtpmES512 (issue 13): ES512 keys are TPM keys where the TPM has
// P-521 (swtpm 0.7 with libtpms 0.9 has it); a TPM without it says so and
// makes none.
func TestSwtpmES512(t *testing.T) {
	tp, _ := openSwtpm(t)
	kp := tp.KeyProvider()
	t.Logf("%s curves: %v", tp, tp.capabilities().curves)
	if !tp.capabilities().hasCurve(tpm2.TPMECCNistP521) {
		if kp.Supports(keystore.AlgES512) {
			t.Fatal("ES512 supported without P-521")
		}
		if _, _, err := kp.Generate(keystore.AlgES512); err == nil {
			t.Fatal("Generate(ES512) succeeded without P-521")
		}
		t.Skip("this TPM has no P-521")
	}
	if !kp.Supports(keystore.AlgES512) {
		t.Fatal("ES512 not supported on a TPM with P-521")
	}
	blob, key, err := kp.Generate(keystore.AlgES512)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P521() {
		t.Fatalf("key %T: want P-521", key.Public())
	}
	loaded, err := kp.Load(keystore.AlgES512, blob)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("authenticatorData || clientDataHash")
	h := sha512.Sum512(msg)
	sig, err := loaded.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		t.Fatal("ES512 signature does not verify over SHA-512")
	}
	t.Logf("ES512 blob %d bytes", len(blob))
}

// TestCheckPSSSalt: a PS256 signature with the longest salt, which TPM 2.0
// allows a TPM to make, is refused; RFC 8230's 32-byte salt passes.
func TestCheckPSSSalt(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte("message"))
	for _, tc := range []struct {
		salt int
		ok   bool
	}{{rsa.PSSSaltLengthEqualsHash, true}, {rsa.PSSSaltLengthAuto, false}} {
		sig, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: tc.salt})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPSSSalt(&priv.PublicKey, h[:], sig); (err == nil) != tc.ok || (err != nil && !errors.Is(err, errPSSSalt)) {
			t.Errorf("salt length %d: checkPSSSalt = %v", tc.salt, err)
		}
	}
}

// TestSwtpmPSSSaltProbe: swtpm's RSAPSS salt is the digest length, which
// the provider finds once; on a TPM whose salt is the longest (TPM 2.0
// Part 1 rev 01.38 section B.7), PS256 keys are not TPM keys (the
// authenticator makes software keys) while RS256 keys still are.
func TestSwtpmPSSSaltProbe(t *testing.T) {
	tp, _ := openSwtpm(t)
	kp := tp.KeyProvider()
	if !kp.Supports(keystore.AlgPS256) || tp.pssSalt == nil || !*tp.pssSalt {
		t.Fatalf("swtpm: PS256 %v after the probe (%v)", kp.Supports(keystore.AlgPS256), tp.pssSalt)
	}
	maxSalt := false
	tp.pssSalt = &maxSalt
	if kp.Supports(keystore.AlgPS256) || !kp.Supports(keystore.AlgRS256) {
		t.Errorf("a TPM with the longest PSS salt: PS256 %v, RS256 %v; want RS256 only", kp.Supports(keystore.AlgPS256), kp.Supports(keystore.AlgRS256))
	}
	if _, _, err := kp.Generate(keystore.AlgPS256); err == nil {
		t.Error("Generate(PS256) on a TPM with the longest PSS salt succeeded")
	}
}
