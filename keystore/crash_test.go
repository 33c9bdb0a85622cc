package keystore

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "VKEY_KEYSTORE_CRASH_CHILD"

// crashCounterIDs are the (unstored) credential IDs the child counts on.
var crashCounterIDs = []string{"ctr-a", "ctr-b", "ctr-c"}

// TestFileCrashChild is the child half of TestFileCrashKill: it does
// nothing unless re-executed by it. It opens the store and loops forever,
// printing each answered operation on its own line (one write each):
//
//	C <credential id>         PutCredential returned nil
//	N <counter id> <value>    NextSignCount returned value
func TestFileCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("child half of TestFileCrashKill")
	}
	dir, keyHex, _ := strings.Cut(spec, ";")
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := OpenFile(dir, FileOptions{MasterKey: key, ReserveBlock: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	pid := os.Getpid()
	for i := 0; ; i++ {
		id := fmt.Sprintf("cred-%d-%d", pid, i)
		c := &Credential{ID: []byte(id), RPID: "crash.example", Algorithm: AlgES256, Provider: SoftwareProviderName, KeyBlob: []byte("k"), Created: time.Now()}
		if err := f.PutCredential(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		if _, err := os.Stdout.WriteString("C " + id + "\n"); err != nil {
			os.Exit(5)
		}
		for j := 0; j < 5; j++ {
			cid := crashCounterIDs[(i+j)%len(crashCounterIDs)]
			v, err := f.NextSignCount([]byte(cid))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(6)
			}
			if _, err := os.Stdout.WriteString("N " + cid + " " + strconv.FormatUint(uint64(v), 10) + "\n"); err != nil {
				os.Exit(5)
			}
		}
	}
}

// TestFileCrashKill re-executes the test binary as a child that writes
// credentials and counts signatures, kills it with SIGKILL at random
// moments, and after every kill checks that the state loads, that every
// credential whose creation was answered is present, and that counters
// only grow (also across the restart).
func TestFileCrashKill(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in child")
	}
	kills := 200
	if testing.Short() {
		kills = 20
	}
	dir := t.TempDir()
	key := testKey(t)
	seen := map[string]uint32{}
	created := map[string]bool{}
	ops := 0
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for k := 0; k < kills; k++ {
		// Kill after a random number of answered lines, plus a random pause
		// so the kill lands anywhere in a write.
		wantLines := 1 + rng.IntN(40)
		firstInRun := map[string]bool{}
		check := func(line string) {
			line = strings.TrimSuffix(line, "\n")
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "C":
				created[f[1]] = true
			case len(f) == 3 && f[0] == "N":
				v, err := strconv.ParseUint(f[2], 10, 32)
				if err != nil {
					t.Fatalf("bad line %q", line)
				}
				if uint32(v) <= seen[f[1]] {
					t.Fatalf("kill %d: counter %s answered %d after %d (first in run: %v)", k, f[1], v, seen[f[1]], !firstInRun[f[1]])
				}
				firstInRun[f[1]] = true
				seen[f[1]] = uint32(v)
			default:
				t.Fatalf("bad line %q", line)
			}
			ops++
		}
		runAndKill(t, "TestFileCrashChild", crashChildEnv+"="+dir+";"+hex.EncodeToString(key), wantLines,
			time.Duration(rng.IntN(2000))*time.Microsecond, check)

		f, err := OpenFile(dir, FileOptions{MasterKey: key})
		if err != nil {
			t.Fatalf("kill %d: state does not load: %v", k, err)
		}
		for id := range created {
			if _, err := f.Credential([]byte(id)); err != nil {
				f.Close()
				t.Fatalf("kill %d: answered credential %s is missing: %v", k, id, err)
			}
		}
		for id, v := range seen {
			if n, _ := f.SignCount([]byte(id)); n < v {
				f.Close()
				t.Fatalf("kill %d: counter %s reloads at %d, below answered %d", k, id, n, v)
			}
		}
		must(t, f.Close())
	}
	t.Logf("%d SIGKILLs, %d answered operations, %d credentials, counters %v", kills, ops, len(created), seen)
}

const replaceChildEnv = "VKEY_KEYSTORE_REPLACE_CHILD"

// TestReplaceCrashChild is the child half of TestReplaceCrashKill: it
// replaces alice's discoverable credential over and over, printing
// "R <id>" once each PutDiscoverable has returned.
func TestReplaceCrashChild(t *testing.T) {
	spec := os.Getenv(replaceChildEnv)
	if spec == "" {
		t.Skip("child half of TestReplaceCrashKill")
	}
	dir, keyHex, _ := strings.Cut(spec, ";")
	key, err := hex.DecodeString(keyHex)
	if err != nil {
		os.Exit(2)
	}
	f, err := OpenFile(dir, FileOptions{MasterKey: key})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	for i := 0; ; i++ {
		c := sampleCred(fmt.Sprintf("rep-%d-%d", os.Getpid(), i), true)
		c.UserID = []byte("alice")
		if _, err := f.PutDiscoverable(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		if _, err := os.Stdout.WriteString("R " + string(c.ID) + "\n"); err != nil {
			os.Exit(5)
		}
	}
}

// TestReplaceCrashKill kills a process that keeps replacing one user's
// discoverable credential (makeCredential with the same RP and user ID)
// at random moments: after every kill the user has exactly one
// credential, the last answered one or the one being written, never none
// (issue 11 point 11).
func TestReplaceCrashKill(t *testing.T) {
	if os.Getenv(replaceChildEnv) != "" || os.Getenv(crashChildEnv) != "" {
		t.Skip("in child")
	}
	kills := 60
	if testing.Short() {
		kills = 10
	}
	dir := t.TempDir()
	key := testKey(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	rpHash := CounterKey([]byte("example.com")) // SHA-256
	for k := 0; k < kills; k++ {
		var last string
		runAndKill(t, "TestReplaceCrashChild", replaceChildEnv+"="+dir+";"+hex.EncodeToString(key), 1+rng.IntN(20),
			time.Duration(rng.IntN(3000))*time.Microsecond, func(line string) {
				last = strings.TrimPrefix(strings.TrimSuffix(line, "\n"), "R ")
			})
		pid, i := 0, 0
		fmt.Sscanf(last, "rep-%d-%d", &pid, &i)
		next := fmt.Sprintf("rep-%d-%d", pid, i+1)

		f, err := OpenFile(dir, FileOptions{MasterKey: key})
		if err != nil {
			t.Fatalf("kill %d: state does not load: %v", k, err)
		}
		got, err := f.DiscoverableCredentials(rpHash[:])
		must(t, err)
		must(t, f.Close())
		if len(got) != 1 || (string(got[0].ID) != last && string(got[0].ID) != next) {
			t.Fatalf("kill %d: alice has %q, want exactly %s or %s", k, ids(got), last, next)
		}
	}
}

func ids(cs []*Credential) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c.ID))
	}
	return out
}

// runAndKill re-executes the test binary as a child running test (with
// env set), hands each line it answers to onLine, kills it with SIGKILL
// after lines lines and a pause, and hands on the complete lines it wrote
// before dying: each was answered.
func runAndKill(t *testing.T, test, env string, lines int, pause time.Duration, onLine func(string)) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	r := bufio.NewReader(out)
	for ; lines > 0; lines-- {
		line, err := r.ReadString('\n')
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child ended early: %v; stderr: %s", err, stderr.String())
		}
		onLine(line)
	}
	time.Sleep(pause)
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	rest, _ := io.ReadAll(r)
	for _, line := range strings.SplitAfter(string(rest), "\n") {
		if strings.HasSuffix(line, "\n") {
			onLine(line)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child was not killed: %v; stderr: %s", err, stderr.String())
	}
}
