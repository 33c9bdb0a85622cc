package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vkey-dev/vkey/internal/clientsummary"
	"github.com/vkey-dev/vkey/internal/keyproc"
	"github.com/vkey-dev/vkey/internal/vmtest"
)

//go:embed guest
var guestFiles embed.FS

// browserCase is one run of the page in one browser, or one case the guest
// script runs with other clients.
type browserCase struct {
	name    string
	browser string   // the host program it needs (the browser)
	needs   []string // other host programs it needs
	steps   []string // the steps whose reports must say ok
	shell   bool     // run by the guest script itself, without a browser
	// libfido2: the case runs internal/libfido2test's test binary, built
	// here with cgo; it is skipped when that build fails.
	libfido2 bool
	// playwright: the case runs testdata/node/playwright_passkey.mjs; it
	// is skipped when npm has not installed playwright-core there.
	playwright bool
	// coveredBy names a case that proves the same: this one is left out
	// when that one runs.
	coveredBy string
	// optional are steps run and reported whose failure names a known
	// defect (the value) and does not fail the test.
	optional map[string]string
	// observe are steps run and reported with what the browser did,
	// never required: what a browser does where the spec lets it choose.
	// The value says, in a few words, what a step that did not give its
	// result means (e.g. "gave no results without a PIN").
	observe map[string]string
	// known, when set, names a known defect: the case runs and its
	// outcome is reported, but a failure does not fail the test.
	known string
}

var cases = []browserCase{
	// Cases the guest script runs without a browser, first: they take
	// seconds.
	{name: "two-keys", browser: "fido2-token", needs: []string{"fido2-cred", "fido2-assert"}, shell: true,
		steps: []string{"devices", "list", "serials", "vkey-devices", "own-credentials"}},
	{name: "pam-u2f", browser: "pamu2fcfg", needs: []string{"pamtester"}, shell: true,
		steps: []string{"register", "authenticate", "denied"}},
	{name: "libfido2", browser: "gcc", shell: true, libfido2: true,
		steps: []string{"Info", "PIN", "MakeAndGet", "HMACSecret", "CredentialManagement", "LargeBlobs", "Reset"}},
	// Chromium makes a discoverable credential, and evaluates PRF, only
	// with user verification: on a key without a PIN it asks to set one
	// (kClientPinSetup), which headless Chromium cannot show. Both are
	// therefore proven in its PIN case.
	// Chromium headless without a PIN: register and sign in. The playwright
	// case below runs the same page in the same headless Chromium, driven
	// by Playwright: where it runs, this case is left out (one Chromium
	// start less in the boot).
	{name: "chromium-headless", browser: "chromium", steps: []string{"create", "get"}, coveredBy: "playwright"},
	// docs/ci.md's Playwright step and its shell steps (vkey run
	// --ready-file, wait, the script), Playwright (playwright-core from
	// testdata/node) driving Debian's chromium; the page reports create and
	// get, the script's exit status is the step "script".
	{name: "playwright", browser: "chromium", needs: []string{"node"}, playwright: true, steps: []string{"create", "get", "script"}},
	// Two keys, and the RP's own options: key a waits for a touch nobody
	// gives, key b answers by itself; the kit registers on key b, Chromium
	// registers, then signs in with the kit's credential (key-b: the key
	// that holds it must answer); key a is stopped and Chromium signs in
	// with key b alone, with its own credential and the kit's; the kit
	// signs in last. The Go test verifies every response with one
	// go-webauthn RP (same-rp).
	// Key a, without the credential, waits for its touch before it
	// answers CTAP2_ERR_NO_CREDENTIALS, as hardware keys do; an immediate
	// answer made Chromium end in "key not registered" (kKeyNotRegistered)
	// in 2 of 3 boots.
	{name: "chromium-two-keys", browser: "chromium", steps: []string{"kit-create", "rp-create", "rp-get", "key-b", "a-stopped", "key-b-alone", "kit-get", "same-rp"}},
	// PRF evaluated at create() (prf-create; WebAuthn L3 section 10.1.4)
	// needs the browser to send CTAP 2.2's hmac-secret-mc (section 12.7).
	// Firefox ESR 153 does not: with or without a PIN it sends hmac-secret
	// only and reports prf.enabled without results, which prf-create
	// asserts (page parameter prfmc=enabled; the key's authenticator data
	// shows which extensions it was asked for). Without a PIN its sign-in
	// gives no PRF results either (prf, observed only).
	{name: "firefox-headless", browser: "firefox-esr", steps: []string{"create", "get", "discoverable", "prf-create"},
		observe: map[string]string{"prf": "gave no results without a PIN"}},
	// Chromium 156 sends hmac-secret-mc when create() asks prf.eval and
	// the key lists it in getInfo: prf-create requires prf.results.first,
	// equal to what get() gives for the same salt (prfmc=results).
	{name: "chromium-pin", browser: "chromium", needs: []string{"Xvfb", "xdotool"}, steps: []string{"create", "get", "discoverable", "prf-create", "prf"}},
	// With a PIN, Firefox's sign-in gives PRF results (prf: two salts, two
	// 32-byte outputs; the second sign-in with the same salt, which
	// chromium-pin makes, is left out to keep the boot short).
	{name: "firefox-pin", browser: "firefox-esr", steps: []string{"create", "get", "prf-create", "prf"}},
}

// report is what the page POSTs for each step.
type report struct {
	Case   string         `json:"case"`
	Step   string         `json:"step"`
	OK     bool           `json:"ok"`
	Detail map[string]any `json:"detail"`
	UA     string         `json:"ua"`
}

// TestVMBrowsers boots one guest and runs every case whose programs are
// installed: two keys at once (fido2-token lists both, distinct serials,
// each signs only with its own credentials), pam-u2f (pamu2fcfg, then
// pamtester through pam_u2f.so with a touch and with a refused one),
// Chromium and Firefox headless without a PIN (register, sign in; PRF in
// Chromium, discoverable sign-in in Firefox), Chromium windowed on Xvfb with
// the PIN typed into its dialog (with discoverable sign-in), and Firefox
// with its PIN prompt answered by an autoconfig script (userVerification
// required, UV=1 checked).
func TestVMBrowsers(t *testing.T) {
	vmtest.Require(t)
	if _, err := exec.LookPath("python3"); err != nil {
		clientsummary.Write(clientsummary.Skipped, "browsers and clients in the VM", "python3 is not installed")
		t.Skip("skipping the browser test: python3 is not installed")
	}
	// A line per case for make test's summary, written once the case's
	// reports are judged; should the test end before that (the guest
	// failed), one line says so.
	judged := false
	t.Cleanup(func() {
		if !judged && t.Failed() {
			clientsummary.Write(clientsummary.Failed, "browsers and clients in the VM", "the guest run failed before the cases were judged (go test -v ./internal/browsertest says why)")
		}
	})
	// A comma-separated subset of the cases (VKEY_BROWSER_CASES=none: none,
	// to keep make vmtest short).
	only := os.Getenv("VKEY_BROWSER_CASES")
	var run []browserCase
	var unselected []string
	for _, c := range cases {
		if only != "" && !slices.Contains(strings.Split(only, ","), c.name) {
			unselected = append(unselected, c.name)
			continue
		}
		missing := ""
		for _, p := range append([]string{c.browser}, c.needs...) {
			if _, err := exec.LookPath(p); err != nil {
				missing = p
				break
			}
		}
		if missing != "" {
			t.Logf("%s: skipped, %s is not installed (make deps installs it where the distribution has it)", c.name, missing)
			clientsummary.Write(clientsummary.Skipped, c.name+" in the VM", missing+" is not installed (make deps installs it where the distribution has it)")
			continue
		}
		run = append(run, c)
	}
	if len(unselected) > 0 {
		clientsummary.Write(clientsummary.Skipped, "browser test cases in the VM", strings.Join(unselected, ", ")+": not selected by VKEY_BROWSER_CASES="+only)
	}
	share := shareDir(t)
	for i := 0; i < len(run); i++ {
		if !run[i].libfido2 {
			continue
		}
		// The test binary, with VKEY_BIN pointing at the guest's vkey.
		cmd := exec.Command("go", "test", "-c", "-tags", "libfido2", "-o", filepath.Join(share, "libfido2test.test"),
			"github.com/vkey-dev/vkey/internal/libfido2test")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("libfido2: skipped, its tests do not build here (they need gcc and libfido2-dev): %v\n%s", err, out)
			clientsummary.Write(clientsummary.Skipped, "libfido2 in the VM", "internal/libfido2test does not build here (it needs gcc and libfido2-dev)")
			run = slices.Delete(run, i, i+1)
			i--
		}
	}
	for i := 0; i < len(run); i++ {
		if !run[i].playwright {
			continue
		}
		dir, err := filepath.Abs("../../testdata/node")
		if err == nil {
			_, err = os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json"))
		}
		if err == nil {
			// The guest has a /tmp of its own (a clean clone often lives
			// under the host's /tmp), so the script and playwright-core go
			// through the share.
			err = copyPlaywright(dir, filepath.Join(share, "node"))
		}
		if err != nil {
			t.Logf("playwright: skipped, playwright-core is not installed in testdata/node (make deps installs it): %v", err)
			clientsummary.Write(clientsummary.Skipped, "playwright in the VM", "playwright-core is not installed in testdata/node (make deps installs it)")
			run = slices.Delete(run, i, i+1)
			i--
		}
	}
	for i := 0; i < len(run); i++ {
		by := run[i].coveredBy
		if by != "" && slices.ContainsFunc(run, func(c browserCase) bool { return c.name == by }) {
			t.Logf("%s: left out, the case %s proves the same", run[i].name, by)
			clientsummary.Write(clientsummary.Skipped, run[i].name+" in the VM", "left out: the case "+by+" proves the same")
			run = slices.Delete(run, i, i+1)
			i--
		}
	}
	if len(run) == 0 && only != "" {
		t.Skipf("skipping the browser test: VKEY_BROWSER_CASES=%s selects none of its cases", only)
	}
	if len(run) == 0 {
		t.Skip("skipping the browser test: none of its clients is installed (make deps installs them)")
	}

	// Each case waits this long for the page's last report: a browser
	// starts in 20 to 60 s under TCG on an idle 2-core host, much later on
	// a busy one. The whole boot is bounded by the sum, plus the boot.
	caseTime := 300 * time.Second
	budget := time.Minute
	for _, c := range run {
		if c.shell {
			budget += 4 * time.Minute // each step bounded by a 60 s timeout, libfido2's by 240 s
		} else {
			budget += caseTime + 15*time.Second
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), budget)
	defer cancel()
	if err := copyGuestFiles(share, keyproc.Binary(t), run, caseTime); err != nil {
		t.Fatal(err)
	}
	rp, err := newSameRP(share)
	if err != nil {
		t.Fatal(err)
	}
	k := vmtest.TestKernel(t, ctx)
	initrd := filepath.Join(t.TempDir(), "initramfs.cpio.gz")
	err = vmtest.Initramfs(ctx, initrd, vmtest.InitramfsSpec{
		Init:    vmtest.HostRootInit("/vkeyshare/guest.sh", k),
		Modules: append(append([]string{}, k.HostRootModules...), k.Modules...),
	})
	vmtest.Skip(t, err)

	res, err := vmtest.Run(ctx, vmtest.RunOptions{
		Kernel: k.Vmlinux, Initrd: initrd, MemoryMB: 3072, SMP: 2,
		// Windowed Chromium's GPU process crashes under -cpu max; this
		// model works for both browsers (../shared/vm/browsers.md).
		CPU:      "qemu64,+rdrand,+ssse3,+sse4.1,+sse4.2,+popcnt",
		HostRoot: true, Share: share,
	})
	if res != nil {
		t.Logf("guest console:\n%s", res.Console)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one guest boot for %d browser cases: %v\n%s", len(run), res.Elapsed.Round(time.Second), caseTimes(res.Console))
	if res.ExitCode != 0 {
		t.Fatalf("guest failed with exit code %d", res.ExitCode)
	}

	reports, err := readReports(filepath.Join(share, "out", "reports.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(run, func(c browserCase) bool { return c.name == "chromium-two-keys" }) {
		reports = append(reports, rp.verifySameRP(share, reports)...)
	}
	var summary strings.Builder
	for _, c := range run {
		got := map[string]report{}
		for _, r := range reports {
			if r.Case == c.name {
				got[r.Step] = r
			}
		}
		var passed, failed []string
		for _, step := range c.steps {
			r, ok := got[step]
			switch {
			case !ok:
				failed = append(failed, step+" (no report)")
			case !r.OK:
				failed = append(failed, fmt.Sprintf("%s (%v)", step, r.Detail["error"]))
			default:
				passed = append(passed, step)
			}
		}
		if r, ok := got["create"]; ok && r.UA != "" {
			fmt.Fprintf(&summary, "%s: %s\n", c.name, r.UA)
		}
		for step, defect := range c.optional {
			if r, ok := got[step]; !ok || !r.OK {
				fmt.Fprintf(&summary, "%s: %s FAILED, a known defect: %s\n", c.name, step, defect)
			} else {
				fmt.Fprintf(&summary, "%s: %s passed (the known defect %q did not show this time: it is a race)\n", c.name, step, defect)
			}
		}
		for _, step := range slices.Sorted(maps.Keys(c.observe)) {
			fmt.Fprintf(&summary, "%s: not required, observed: %s (%s)\n", c.name, observed(c, got, step), detail(got, step))
		}
		if r, ok := got["same-rp"]; ok && r.OK {
			fmt.Fprintf(&summary, "%s: go-webauthn verified the kit's and Chromium's responses; key b's counter: %v; registration JSON: %v; key a: %v; with two keys: %v\n",
				c.name, r.Detail["counters"], r.Detail["fields"], r.Detail["keyA"], r.Detail["twoKeys"])
		}
		fmt.Fprintf(&summary, "%s: passed %v", c.name, passed)
		if len(failed) > 0 {
			fmt.Fprintf(&summary, ", FAILED %v", failed)
		}
		summary.WriteString("\n")
		writeSummary(c, got, passed, failed)
		if len(failed) == 0 {
			continue
		}
		logTail(t, filepath.Join(share, "out", c.name+".log"))
		if c.known != "" {
			t.Logf("%s: known failure (%s): %v", c.name, c.known, failed)
			continue
		}
		t.Errorf("%s: %v", c.name, failed)
	}
	judged = true
	t.Logf("browsers, per client:\n%s", summary.String())
	if t.Failed() {
		logTail(t, filepath.Join(share, "out", "vkey.log"))
		logTail(t, filepath.Join(share, "out", "dmesg.log"))
	}
}

// writeSummary writes case c's line of make test's client summary: PASS
// only when every required step reported ok; a FAIL line names the steps
// that did not, a known defect saying so.
func writeSummary(c browserCase, got map[string]report, passed, failed []string) {
	client := c.name + " in the VM"
	if r, ok := got["create"]; ok && r.UA != "" {
		client += " (" + r.UA + ")"
	}
	what := summaryWhat(c, got, passed)
	switch {
	case len(failed) == 0:
		clientsummary.Write(clientsummary.Passed, client, what)
	case c.known != "":
		clientsummary.Write(clientsummary.Failed, client, fmt.Sprintf("failed %v, a known defect (%s); passed: %s", failed, c.known, what))
	default:
		clientsummary.Write(clientsummary.Failed, client, fmt.Sprintf("failed %v; passed: %s", failed, what))
	}
}

// summaryWhat is what case c's summary line says after its status: the
// steps that passed, then each optional and each observed step.
func summaryWhat(c browserCase, got map[string]report, passed []string) string {
	what := strings.Join(passed, ", ")
	for _, step := range slices.Sorted(maps.Keys(c.optional)) {
		note := c.optional[step]
		if r, ok := got[step]; ok && r.OK {
			what += fmt.Sprintf("; optional %s ok", step)
		} else {
			what += fmt.Sprintf("; optional %s not ok (%s)", step, note)
		}
	}
	for _, step := range slices.Sorted(maps.Keys(c.observe)) {
		what += "; not required, observed: " + observed(c, got, step)
	}
	return what
}

// observed says in words what a step not required did: "prf ok", "prf
// gave no results without a PIN" (the case's note, when it did not give
// its result), or "prf sent no report".
func observed(c browserCase, got map[string]report, step string) string {
	r, ok := got[step]
	switch {
	case !ok:
		return step + " sent no report"
	case r.OK:
		return step + " ok"
	default:
		return step + " " + c.observe[step]
	}
}

// detail is a step's report detail as JSON, for the test log.
func detail(got map[string]report, step string) string {
	r, ok := got[step]
	if !ok {
		return "no report"
	}
	d, _ := json.Marshal(r.Detail)
	return fmt.Sprintf("ok=%v %s", r.OK, d)
}

// caseTimes reads the guest script's "case NAME" and "case NAME: done"
// lines (milliseconds since the script started) and lists each case's time.
func caseTimes(console string) string {
	var out strings.Builder
	start := map[string]int{}
	for _, line := range strings.Split(console, "\n") {
		var ms int
		var rest string
		i := strings.Index(line, "browsers: [")
		if i < 0 {
			continue
		}
		if _, err := fmt.Sscanf(line[i:], "browsers: [%d ms] case", &ms); err != nil {
			continue
		}
		rest = strings.TrimSpace(line[strings.Index(line[i:], "] case")+i+len("] case"):])
		if name, ok := strings.CutSuffix(rest, ": done"); ok {
			if s, ok := start[name]; ok {
				fmt.Fprintf(&out, "  %s: %.1f s\n", name, float64(ms-s)/1000)
			}
			continue
		}
		start[rest] = ms
	}
	return out.String()
}

// shareDir returns a folder for the guest's read-write share: a short
// path without commas, as qemu's -fsdev option wants. It is kept, with the
// browsers' logs, when the test fails.
func shareDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vkbrowsers")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the guest's files and logs are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	return dir
}

// copyGuestFiles puts the page, its server, the guest script, the static
// vkey binary and the list of cases into the share.
func copyGuestFiles(share, vkey string, run []browserCase, caseTime time.Duration) error {
	if err := os.WriteFile(filepath.Join(share, "case-seconds"), []byte(fmt.Sprint(int(caseTime.Seconds()))), 0o644); err != nil {
		return err
	}
	for _, name := range []string{"page.html", "server.py", "guest.sh"} {
		b, err := guestFiles.ReadFile("guest/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(share, name), b, 0o755); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(vkey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(share, "vkey"), bin, 0o755); err != nil {
		return err
	}
	var list strings.Builder
	for _, c := range run {
		list.WriteString(c.name + "\n")
	}
	if err := os.WriteFile(filepath.Join(share, "cases"), []byte(list.String()), 0o644); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(share, "out"), 0o777)
}

// readReports reads the JSON lines the page's server wrote.
func readReports(path string) ([]report, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil // no page ever reported: the per-case checks say so
	}
	if err != nil {
		return nil, err
	}
	var out []report
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("report %q: %w", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// logTail logs the end of a guest log file.
func logTail(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Logf("--- %s (last lines):\n%s", filepath.Base(path), strings.Join(lines, "\n"))
}

// copyPlaywright copies what the playwright case runs (the script, its
// package.json and node_modules/playwright-core) from testdata/node in src
// to dst, a folder of the guest's share.
func copyPlaywright(src, dst string) error {
	pkg := filepath.Join("node_modules", "playwright-core")
	if err := os.CopyFS(filepath.Join(dst, pkg), os.DirFS(filepath.Join(src, pkg))); err != nil {
		return fmt.Errorf("copying playwright-core into the guest's share: %w", err)
	}
	for _, name := range []string{"playwright_passkey.mjs", "package.json"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, name), b, 0o644)
		}
		if err != nil {
			return fmt.Errorf("copying %s into the guest's share: %w", name, err)
		}
	}
	return nil
}
