package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/vkey-dev/vkey/keystore"
)

// MaxSealedSize is the largest secret Seal accepts (MAX_SYM_DATA, TPM 2.0
// Part 2, section 11.1.14).
const MaxSealedSize = 128

// Sealer returns the keystore.Sealer that seals secrets to this TPM.
func (tp *TPM) Sealer() keystore.Sealer { return sealer{tp} }

// sealer implements keystore.Sealer.
type sealer struct{ tp *TPM }

// sealedTemplate is a sealed data object: a keyedHash object with no scheme
// whose sensitive data is the caller's secret; fixedTPM|fixedParent keep it in
// this TPM, userWithAuth with an empty password and noDA let vkey unseal it
// without prompting or risking lockout.
func sealedTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:     true,
			FixedParent:  true,
			UserWithAuth: true,
			NoDA:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}
}

// Seal implements keystore.Sealer with TPM2_Create of a sealed data object
// under the SRK. The secret travels to the TPM encrypted by a session salted
// with the SRK.
func (s sealer) Seal(secret []byte) ([]byte, error) {
	if len(secret) == 0 || len(secret) > MaxSealedSize {
		return nil, fmt.Errorf("tpm: seal: secret must be 1 to %d bytes, not %d", MaxSealedSize, len(secret))
	}
	tp := s.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	t, err := tp.conn()
	if err != nil {
		return nil, err
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: tp.srk, Name: tp.srkName, Auth: tp.encSession(tpm2.AESEncryption(128, tpm2.EncryptIn))},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			Data: tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: secret}),
		}},
		InPublic: tpm2.New2B(sealedTemplate()),
	}.Execute(t)
	if err != nil {
		return nil, tp.wrap("seal", err)
	}
	b := &blob{
		kind:       kindSealed,
		parentName: append([]byte(nil), tp.srkName.Buffer...),
		public:     append([]byte(nil), rsp.OutPublic.Bytes()...),
		private:    append([]byte(nil), rsp.OutPrivate.Buffer...),
	}
	return b.marshal(), nil
}

// Unseal implements keystore.Sealer: TPM2_Load, TPM2_Unseal (the secret
// comes back encrypted by a salted session), TPM2_FlushContext.
func (s sealer) Unseal(data []byte) ([]byte, error) {
	b, err := parseBlob(data, kindSealed)
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	if err := sealedPublic(b.public); err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	tp := s.tp
	tp.mu.Lock()
	defer tp.mu.Unlock()
	lr, err := tp.loadBlob(b)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	t := tp.t
	defer func() { _ = flush(t, lr.ObjectHandle) }()
	rsp, err := tpm2.Unseal{
		ItemHandle: tpm2.AuthHandle{Handle: lr.ObjectHandle, Name: lr.Name, Auth: tp.encSession(tpm2.AESEncryption(128, tpm2.EncryptOut))},
	}.Execute(t)
	if err != nil {
		return nil, tp.wrap("unseal", err)
	}
	return rsp.OutData.Buffer, nil
}
