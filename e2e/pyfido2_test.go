package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
)

// pyFido2Env is the environment that gives /usr/bin/python3 the
// python-fido2 2.x (CTAP 2.2) that `make deps` unpacks from Debian sid into
// .cache/pyfido2 (.ci/deps-pyfido2), or the dist-packages folder
// $VKEY_PYFIDO2 names, ahead of Debian 12's 0.9.1. The test is skipped when
// neither imports.
func pyFido2Env(t *testing.T) []string {
	t.Helper()
	needTool(t, "/usr/bin/python3")
	site := os.Getenv("VKEY_PYFIDO2")
	if site == "" {
		site, _ = filepath.Abs("../.cache/pyfido2/root/usr/lib/python3/dist-packages")
	}
	// fido2.payment and Info.enc_identifier exist from python-fido2 2.0 on.
	probe := exec.Command("/usr/bin/python3", "-c", "import fido2.client, fido2.payment; from fido2.ctap2 import Info; Info.enc_identifier")
	probe.Env = append(os.Environ(), "PYTHONPATH="+site)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("python-fido2 2.x is not in %s (run make deps, which fetches it from Debian sid; or set VKEY_PYFIDO2 to a dist-packages folder that has it): %v\n%s", site, err, out)
	}
	if src, err := os.ReadFile(filepath.Join(site, "../../../../../SOURCE")); err == nil {
		t.Logf("python-fido2: %s", src)
	}
	return []string{"PYTHONPATH=" + site}
}

// TestE2EPythonFido22OverUDP: python-fido2 2.x, a CTAP 2.2 client nobody on
// this project wrote, drives vkey's CTAP 2.2 features through its own client
// code (Fido2Client's PRF at registration under both PIN protocols,
// ClientPin's persistent token with CredentialManagement, Info's
// encIdentifier, ThirdPartyPaymentExtension, getInfo's 2.2 fields and
// attestationFormatsPreference; testdata/python/ctap22_udp.py), and
// registers and asserts every algorithm, checked by its Fido2Server under
// packed attestation (verified up to the key's root) and none
// (testdata/python/algorithms_udp.py).
func TestE2EPythonFido22OverUDP(t *testing.T) {
	clientsummary.Record(t, "python-fido2 2.x (Debian sid), UDP",
		"CTAP 2.2: PRF at registration (both PIN protocols), persistent token + read-only credMgmt, encIdentifier, thirdPartyPayment, attestationFormats; Fido2Server verifies ES256, EdDSA, ES384, ES512, RS256, PS256 (packed, none)")
	env := pyFido2Env(t)
	t.Run("ctap22_udp.py", func(t *testing.T) { runPython(t, udpKey(t), "ctap22_udp.py", env) })
	for _, att := range []string{"packed", "none"} {
		t.Run("algorithms_udp.py/"+att, func(t *testing.T) {
			k := udpKey(t, "--attestation", att)
			env := append(append([]string{}, env...), "VKEY_ATTESTATION="+att)
			if att == "packed" {
				root := filepath.Join(t.TempDir(), "root.pem")
				if out, err := k.CLI(t, "attestation", "--out", root); err != nil {
					t.Fatalf("vkey attestation: %v\n%s", err, out)
				}
				env = append(env, "VKEY_ATTESTATION_ROOT="+root)
			}
			runPython(t, k, "algorithms_udp.py", env)
		})
	}
}
