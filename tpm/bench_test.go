package tpm

import (
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/internal/benchpair"
	"github.com/vkey-dev/vkey/keystore"
)

// BenchmarkTPMSignVsBare measures, on one swtpm and one key, a KeyProvider
// Load+Sign (what getAssertion does with a TPM-backed credential) against a
// bare TPM2_Load+TPM2_Sign+TPM2_FlushContext of the same key, interleaved op
// by op so both see the same machine load. It reports provider-ns/op,
// bare-ns/op and their ratio (goal: <= 1.10); ns/op is the sum of both.
func BenchmarkTPMSignVsBare(b *testing.B) {
	tp, _ := openSwtpm(b)
	kp := tp.KeyProvider()
	blob, _, err := kp.Generate(keystore.AlgES256)
	if err != nil {
		b.Fatal(err)
	}
	pb, err := parseBlob(blob, kindSigningKey)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 37+32) // authenticatorData || clientDataHash
	digest := sha256.Sum256(msg)

	bare := func() error {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		lr, err := tpm2.Load{
			ParentHandle: tp.srkAuth(),
			InPrivate:    tpm2.TPM2BPrivate{Buffer: pb.private},
			InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](pb.public),
		}.Execute(tp.t)
		if err != nil {
			return err
		}
		_, err = tpm2.Sign{
			KeyHandle:  tpm2.AuthHandle{Handle: lr.ObjectHandle, Name: lr.Name, Auth: tpm2.PasswordAuth(nil)},
			Digest:     tpm2.TPM2BDigest{Buffer: digest[:]},
			InScheme:   sigSchemeECDSA,
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
		}.Execute(tp.t)
		if ferr := flush(tp.t, lr.ObjectHandle); err == nil {
			err = ferr
		}
		return err
	}
	provider := func() error {
		k, err := kp.Load(keystore.AlgES256, blob)
		if err != nil {
			return err
		}
		_, err = k.Sign(msg)
		return err
	}

	benchpair.Compare(b, 1, benchpair.Op{Name: "provider", Run: provider}, benchpair.Op{Name: "bare", Run: bare})
}

// BenchmarkSwtpmRSA measures, on swtpm, what an RSA-2048 credential key
// costs (issue 13): TPM2_Create (a prime search, so its time varies from
// key to key; run with -benchtime=Nx), and a getAssertion's Load+Sign of
// RS256 and PS256.
func BenchmarkSwtpmRSA(b *testing.B) {
	tp, _ := openSwtpm(b)
	kp := tp.KeyProvider()
	b.Run("Generate", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := kp.Generate(keystore.AlgRS256); err != nil {
				b.Fatal(err)
			}
		}
	})
	blob, _, err := kp.Generate(keystore.AlgRS256)
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 37+32)
	for _, alg := range []keystore.Algorithm{keystore.AlgRS256, keystore.AlgPS256} {
		b.Run(map[keystore.Algorithm]string{keystore.AlgRS256: "SignRS256", keystore.AlgPS256: "SignPS256"}[alg], func(b *testing.B) {
			for b.Loop() {
				k, err := kp.Load(alg, blob)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
