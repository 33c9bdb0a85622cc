package browsertest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/vkeytest"
)

// TestSameRPOnHost runs the chromium-two-keys case's relying party without
// a guest: the in-process kit stands in for both the guest's kit and
// Chromium, on the same options files, and verifySameRP must accept all
// five responses. It fails when the RP's options and its checks disagree,
// before a boot is spent finding out; a wrong origin must be refused.
func TestSameRPOnHost(t *testing.T) {
	clientsummary.Record(t, "go-webauthn (relying party), in-process kit", "the chromium-two-keys RP's options and checks accept the kit's responses, refuse a wrong origin")
	share := t.TempDir()
	if err := os.Mkdir(filepath.Join(share, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	rp, err := newSameRP(share)
	if err != nil {
		t.Fatal(err)
	}
	kit := vkeytest.New(t)
	opts := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(share, "rp", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	allow := func(name string, id any) []byte {
		var o map[string]map[string]any
		if err := json.Unmarshal(opts(name), &o); err != nil {
			t.Fatal(err)
		}
		o["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": id}}
		b, _ := json.Marshal(o)
		return b
	}
	do := func(b []byte, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	kc, err := kit.Create(opts("create-kit"), rpOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "out", "kit-create.json"), kc, 0o644); err != nil {
		t.Fatal(err)
	}
	kitID := do(kc, nil)["id"]
	bc := do(kit.Create(opts("create-browser"), rpOrigin))
	bg := do(kit.Get(allow("get-browser", bc["id"]), rpOrigin))
	kb := do(kit.Get(allow("get-b-template", kitID), rpOrigin))
	kalone := do(kit.Get(allow("get-b-alone-template", kitID), rpOrigin))
	kg, err := kit.Get(allow("get-kit-template", kitID), rpOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(share, "out", "kit-get.json"), kg, 0o644); err != nil {
		t.Fatal(err)
	}
	const c = "chromium-two-keys"
	page := []report{{Case: c, Step: "rp-create", OK: true, Detail: map[string]any{"response": bc}},
		{Case: c, Step: "rp-get", OK: true, Detail: map[string]any{"response": bg}},
		{Case: c, Step: "key-b", OK: true, Detail: map[string]any{"response": kb}},
		{Case: c, Step: "key-b-alone", OK: true, Detail: map[string]any{"response": kalone}}}
	got := rp.verifySameRP(share, page)
	if len(got) != 1 || !got[0].OK || got[0].Detail["twoKeys"] != "key b signed" {
		t.Fatalf("verifySameRP: %+v", got)
	}
	t.Logf("%v", got[0].Detail)

	// The same RP refuses a response made for another origin.
	rp2, err := newSameRP(share)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := vkeytest.New(t).Create(opts("create-kit"), "http://localhost:8081")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp2.register(rp2.kit, "create-kit", bad); err == nil || !strings.Contains(err.Error(), "rigin") {
		t.Errorf("a registration for http://localhost:8081 was accepted or refused for another reason: %v", err)
	}
}

// TestCaseTimes reads the guest script's case lines.
func TestCaseTimes(t *testing.T) {
	got := caseTimes("x\nbrowsers: [1000 ms] case a\nbrowsers: [1500 ms] a b: true\n[ 3.1] browsers: [3500 ms] case a: done\nbrowsers: [3600 ms] case b\n")
	if got != "  a: 2.5 s\n" {
		t.Errorf("caseTimes: %q", got)
	}
}

// TestSummaryObservedStep feeds firefox-headless's recorded reports (PRF at
// sign-in without a PIN gives no results, which is not required) to the
// summary: the observed step reads as words, not as a raw report.
func TestSummaryObservedStep(t *testing.T) {
	var c browserCase
	for _, bc := range cases {
		if bc.name == "firefox-headless" {
			c = bc
		}
	}
	if c.name == "" {
		t.Fatal("no firefox-headless case")
	}
	passed := []string{"create", "get", "discoverable", "prf-create"}
	got := map[string]report{"prf": {Case: c.name, Step: "prf", OK: false,
		Detail: map[string]any{"error": "Error: the first sign-in gave no PRF results"}}}
	for _, s := range passed {
		got[s] = report{Case: c.name, Step: s, OK: true}
	}
	for _, tc := range []struct {
		name string
		got  map[string]report
		want string
	}{
		{"no results", got, "create, get, discoverable, prf-create; not required, observed: prf gave no results without a PIN"},
		{"results", map[string]report{"prf": {OK: true}}, "create, get, discoverable, prf-create; not required, observed: prf ok"},
		{"no report", map[string]report{}, "create, get, discoverable, prf-create; not required, observed: prf sent no report"},
	} {
		if w := summaryWhat(c, tc.got, passed); w != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, w, tc.want)
		}
	}
}
