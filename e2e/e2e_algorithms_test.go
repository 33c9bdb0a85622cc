package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/ctap2"
	"github.com/vkey-dev/vkey/ctap2/client"
	"github.com/vkey-dev/vkey/internal/clientsummary"
)

// TestE2EAlgorithmsAndAAGUIDFlags (issue 13): `vkey run --algorithms` and
// `--aaguid` change what libfido2 reads from getInfo, and an algorithm
// left out is refused (fido2-cred -M es256 against an RS256-only key).
func TestE2EAlgorithmsAndAAGUIDFlags(t *testing.T) {
	needTool(t, "fido2-token", "fido2-cred", "fido2-assert")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto",
		"--algorithms", "rs256,ES384", "--aaguid", "cb69481e-8ff7-4039-93ec-0a2729a154a8")
	info, err := tool(t, "", "fido2-token", "-I", k.Where)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "algorithms: rs256 (public-key), es384 (public-key)") ||
		!strings.Contains(info, "aaguid: cb69481e8ff7403993ec0a2729a154a8") {
		t.Errorf("fido2-token -I does not show the flags' algorithms and AAGUID:\n%s", info)
	}
	id, pub := fido2Register(t, k.Where, "example.com", "rs256")
	fido2Assert(t, k.Where, "example.com", id, pub, "rs256")
	in := randomB64(32) + "\nexample.com\nalice\n" + randomB64(16) + "\n"
	if _, err := tool(t, in, "fido2-cred", "-M", k.Where, "es256"); err == nil || !strings.Contains(err.Error(), "FIDO_ERR_UNSUPPORTED_ALGORITHM") {
		t.Errorf("fido2-cred -M es256 against an RS256/ES384 key: %v, want FIDO_ERR_UNSUPPORTED_ALGORITHM", err)
	}
}

// TestE2EAttestationCAFlag (issue 13): with `--attestation-ca CERT,KEY`
// (a SEC 1 PEM key), the packed x5c of a registration chains to the
// user's CA.
func TestE2EAttestationCAFlag(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Team attestation root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600)

	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto", "--attestation-ca", certFile+","+keyFile)
	c := dial(t, k.Where)
	att, err := c.MakeCredential(context.Background(), &ctap2.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{1}, Name: "alice"}, PubKeyCredParams: esParams(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	var stmt struct {
		X5C [][]byte `cbor:"x5c"`
	}
	if err := ctap2.Unmarshal(att.AttStmt, &stmt); err != nil || len(stmt.X5C) != 1 {
		t.Fatalf("attStmt x5c: %v (%d certificates)", err, len(stmt.X5C))
	}
	leaf, err := x509.ParseCertificate(stmt.X5C[0])
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("attestation does not chain to the --attestation-ca root: %v", err)
	}
}

// makeRK makes a discoverable credential for user at example.com with an
// exclude list of exclude unknown IDs of idLen bytes (to size the message).
func makeRK(ctx context.Context, t *testing.T, c *client.Client, user byte, exclude, idLen int) error {
	req := &ctap2.MakeCredentialRequest{ClientDataHash: make([]byte, 32), RP: &ctap2.RPEntity{ID: "example.com"},
		User: &ctap2.UserEntity{ID: []byte{user}, Name: "u"}, PubKeyCredParams: esParams(t), Options: map[string]bool{"rk": true}}
	for range exclude {
		req.ExcludeList = append(req.ExcludeList, ctap2.CredentialDescriptor{Type: "public-key", ID: make([]byte, idLen)})
	}
	_, err := c.MakeCredential(ctx, req)
	return err
}

// TestE2EProfile (issue 13): `vkey run --profile yubikey5-fw5.4` shows
// libfido2 the YubiKey's figures, keeps vkey's AAGUID, refuses the 26th
// discoverable credential with CTAP2_ERR_KEY_STORE_FULL and a message
// longer than its 1200-byte maxMsgSize with the CTAPHID error
// ERR_INVALID_LEN (CTAP 2.1 section 11.2, CTAPHID_ERROR), as that key does.
func TestE2EProfile(t *testing.T) {
	needTool(t, "fido2-token")
	k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto", "--profile", "yubikey5-fw5.4")
	info, err := tool(t, "", "fido2-token", "-I", k.Where)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"version strings: U2F_V2, FIDO_2_0, FIDO_2_1_PRE\n", "extension strings: credProtect, hmac-secret\n",
		"algorithms: es256 (public-key), eddsa (public-key)\n", "options: rk, up, noplat, noclientPin, credentialMgmtPreview\n",
		"maxmsgsiz: 1200\n", "maxcredcntlst: 8\n", "maxcredlen: 128\n", "aaguid: 766b65792d7669727475616c2d6b6579\n", "fwversion: 0x50403\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("fido2-token -I lacks %q:\n%s", want, info)
		}
	}
	c := dial(t, k.Where)
	ctx := context.Background()
	mc := func(user byte, exclude int) error { return makeRK(ctx, t, c, user, exclude, 128) }
	for i := range 25 {
		if err := mc(byte(i), 0); err != nil {
			t.Fatalf("credential %d: %v", i+1, err)
		}
	}
	var st ctap2.Status
	if err := mc(99, 0); !errors.As(err, &st) || st != ctap2.ErrKeyStoreFull {
		t.Errorf("26th discoverable credential: %v, want CTAP2_ERR_KEY_STORE_FULL", err)
	}
	if err := mc(1, 6); err != nil {
		t.Errorf("an exclude list within maxMsgSize: %v", err)
	}
	if err := mc(1, 9); err == nil || !strings.Contains(err.Error(), "ERR_INVALID_LEN") {
		t.Errorf("a message past maxMsgSize: %v, want the CTAPHID error INVALID_LEN", err)
	}
}

// TestE2EProfiles (issue 13): libfido2's `fido2-token -I` shows each
// further profile's figures (sources in ctap2/profile.go), and a request
// past a limit gets the status that key returns: the Nitrokey 3's 11th
// discoverable credential is CTAP2_ERR_KEY_STORE_FULL, as are the
// ExcelSecu's 51st and the YubiKey 5.7's 101st; the Feitian ePass, the
// Titan v2, the ExcelSecu and the YubiKey 5.7 answer a message past their
// maxMsgSize with CTAPHID's ERR_INVALID_LEN; the Feitian and the Titan
// answer PIN protocol 2 with CTAP1_ERR_INVALID_PARAMETER. A second RP ID
// for the YubiKey 5.7's setMinPINLength gets vkey's status for that limit,
// CTAP2_ERR_PIN_POLICY_VIOLATION (Yubico does not publish the key's).
func TestE2EProfiles(t *testing.T) {
	clientsummary.Record(t, "libfido2 fido2-token, pty, --profile", "every profile's getInfo figures and its past-limit statuses")
	needTool(t, "fido2-token")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		want []string
		// full is the discoverable capacity (0: none published); within
		// and past are exclude lists of 96-byte IDs that fit maxMsgSize
		// and that do not; protocol1 says the key has PIN protocol 1 only.
		full, within, past int
		protocol1          bool
	}{
		{"nitrokey3", []string{"version strings: U2F_V2, FIDO_2_0, FIDO_2_1\n", "extension strings: credProtect, hmac-secret\n",
			"transport strings: nfc, usb\n", "maxmsgsiz: 3072\n", "maxcredcntlst: 10\n", "maxcredlen: 255\n", "pin protocols: 2, 1\n",
			"aaguid: 766b65792d7669727475616c2d6b6579\n"}, 10, 0, 0, false},
		{"feitian-epass-fido", []string{"version strings: U2F_V2, FIDO_2_0, FIDO_2_1_PRE\n", "extension strings: credProtect, hmac-secret\n",
			"algorithms: es256 (public-key)\n", "options: rk, up, noplat, noclientPin, credentialMgmtPreview\n",
			"maxmsgsiz: 1024\n", "maxcredcntlst: 6\n", "maxcredlen: 96\n", "pin protocols: 1\n"}, 0, 6, 12, true},
		{"yubikey5-fw5.7", []string{"version strings: U2F_V2, FIDO_2_0, FIDO_2_1_PRE, FIDO_2_1\n",
			"extension strings: credProtect, hmac-secret, largeBlobKey, credBlob, minPinLength\n", "transport strings: nfc, usb\n",
			"algorithms: es256 (public-key), eddsa (public-key), es384 (public-key)\n", "fwversion: 0x50701\n", "maxmsgsiz: 1280\n",
			"maxcredcntlst: 8\n", "maxcredlen: 128\n", "maxlargeblob: 4096\n", "maxrpids in minpinlen: 1\n", "remaining rk(s): 100\n",
			"pin protocols: 2, 1\n"}, 100, 6, 12, false},
		{"google-titan-v2", []string{"version strings: FIDO_2_0, U2F_V2\n", "extension strings: credProtect, hmac-secret\n",
			"options: rk, noclientPin\n", "maxmsgsiz: 2200\n", "pin protocols: 1\n"}, 0, 8, 22, true},
		{"excelsecu-fido2", []string{"version strings: U2F_V2, FIDO_2_0, FIDO_2_1, FIDO_2_1_PRE\n",
			"extension strings: credBlob, credProtect, hmac-secret, largeBlobKey, minPinLength\n", "transport strings: usb, nfc, ble\n",
			"algorithms: es256 (public-key), eddsa (public-key)\n", "fwversion: 0x100\n", "maxmsgsiz: 2048\n", "maxcredcntlst: 8\n",
			"maxcredlen: 96\n", "maxlargeblob: 2048\n", "pin protocols: 2, 1\n", "maxrpids in minpinlen: 6\n", "remaining rk(s): 50\n",
			"options: rk, up, noplat, noalwaysUv, credMgmt, authnrCfg, noclientPin, largeBlobs, pinUvAuthToken, setMinPINLength, makeCredUvNotRqd, credentialMgmtPreview\n"}, 50, 8, 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := startKey(t, "--ephemeral", "--transport", "pty", "--presence", "auto", "--profile", tc.name)
			info, err := tool(t, "", "fido2-token", "-I", k.Where)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(info, want) {
					t.Errorf("fido2-token -I lacks %q:\n%s", want, info)
				}
			}
			if (tc.name == "nitrokey3" || tc.name == "google-titan-v2") && strings.Contains(info, "algorithms:") {
				t.Errorf("fido2-token -I shows algorithms, which the %s does not report:\n%s", tc.name, info)
			}
			c := dial(t, k.Where)
			mc := func(user byte, exclude int) error { return makeRK(ctx, t, c, user, exclude, 96) }
			var st ctap2.Status
			if tc.past > 0 {
				if err := mc(1, tc.within); err != nil {
					t.Errorf("an exclude list within maxMsgSize: %v", err)
				}
				if err := mc(1, tc.past); err == nil || !strings.Contains(err.Error(), "ERR_INVALID_LEN") {
					t.Errorf("a message past maxMsgSize: %v, want the CTAPHID error INVALID_LEN", err)
				}
			}
			for i := range tc.full {
				if err := mc(byte(i), 0); err != nil {
					t.Fatalf("credential %d: %v", i+1, err)
				}
			}
			if tc.full > 0 {
				if err := mc(199, 0); !errors.As(err, &st) || st != ctap2.ErrKeyStoreFull {
					t.Errorf("discoverable credential %d: %v, want CTAP2_ERR_KEY_STORE_FULL", tc.full+1, err)
				}
			}
			if tc.protocol1 {
				if err := c.SetPIN(ctx, 2, "1234"); !errors.As(err, &st) || st != ctap2.ErrInvalidParameter {
					t.Errorf("setPIN under PIN protocol 2: %v, want CTAP1_ERR_INVALID_PARAMETER", err)
				}
				if err := c.SetPIN(ctx, 1, "1234"); err != nil {
					t.Errorf("setPIN under PIN protocol 1: %v", err)
				}
			}
			if tc.name == "yubikey5-fw5.7" {
				if err := c.SetMinPINLength(ctx, nil, 4, []string{"a.example", "b.example"}, false); !errors.As(err, &st) || st != ctap2.ErrPINPolicyViolation {
					t.Errorf("setMinPINLength with 2 RP IDs: %v, want CTAP2_ERR_PIN_POLICY_VIOLATION", err)
				}
			}
		})
	}
}
