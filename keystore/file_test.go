package keystore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func openT(t testing.TB, dir string, key []byte) *File {
	t.Helper()
	f, err := OpenFile(dir, FileOptions{MasterKey: key})
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	return f
}

func sampleCred(id string, discoverable bool) *Credential {
	return &Credential{
		ID:                  []byte(id),
		RPID:                "example.com",
		RPName:              "Example",
		UserID:              []byte("user-" + id),
		UserName:            "alice",
		UserDisplayName:     "Alice",
		Algorithm:           AlgES256,
		Provider:            SoftwareProviderName,
		KeyBlob:             []byte("keyblob-" + id),
		Discoverable:        discoverable,
		CredProtect:         2,
		CredRandomWithUV:    bytes.Repeat([]byte{1}, 32),
		CredRandomWithoutUV: bytes.Repeat([]byte{2}, 32),
		CredBlob:            []byte("blob"),
		LargeBlobKey:        bytes.Repeat([]byte{3}, 32),
		BackupEligible:      true,
		Created:             time.Date(2025, 1, 2, 3, 4, 5, 6789, time.UTC),
		PublicKey:           []byte{0xa5, 1, 2},
		HMACSecret:          true,
	}
}

func TestFileRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	key := testKey(t)
	f := openT(t, dir, key)

	if _, err := f.Identity(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Identity on new store: %v, want ErrNotFound", err)
	}
	if p, _ := f.PINState(); p.Retries != DefaultPINRetries || p.Hash != nil {
		t.Fatalf("new PIN state %+v", p)
	}
	if b, _ := f.LargeBlobArray(); b != nil {
		t.Fatalf("new large blob %x", b)
	}
	id := &Identity{WrapKey: bytes.Repeat([]byte{9}, 32), AttestationCAKey: []byte("ca"), AttestationCACert: []byte("cacert"), AttestationKey: []byte("ak"), AttestationCert: []byte("ac")}
	must(t, f.SetIdentity(id))
	c1, c2 := sampleCred("one", true), sampleCred("two", false)
	c2.Created = c1.Created.Add(time.Second)
	must(t, f.PutCredential(c2))
	must(t, f.PutCredential(c1))
	must(t, f.PutCredential(sampleCred("three", true)))
	must(t, f.DeleteCredential([]byte("three")))
	if err := f.DeleteCredential([]byte("three")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	for i := 0; i < 5; i++ {
		if _, err := f.NextSignCount([]byte("one")); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.SetSignCount([]byte("two"), 1000))
	pin := PINState{Hash: bytes.Repeat([]byte{7}, 16), CodePoints: 6, Retries: 5, ForceChange: true}
	must(t, f.SetPINState(pin))
	cfg := Config{AlwaysUV: true, EnterpriseAttestation: true, MinPINLength: 8, MinPINLengthRPIDs: []string{"a.example"}}
	must(t, f.SetConfig(cfg))
	must(t, f.SetLargeBlobArray([]byte{0x80, 1, 2, 3}))
	must(t, f.Close())

	g := openT(t, dir, key)
	defer g.Close()
	gotID, err := g.Identity()
	must(t, err)
	if !reflect.DeepEqual(gotID, id) {
		t.Errorf("identity %+v, want %+v", gotID, id)
	}
	cs, err := g.Credentials()
	must(t, err)
	if len(cs) != 2 || string(cs[0].ID) != "one" || string(cs[1].ID) != "two" {
		t.Fatalf("credentials after reopen: %d", len(cs))
	}
	for _, want := range []*Credential{c1, c2} {
		got, err := g.Credential(want.ID)
		must(t, err)
		if !got.Created.Equal(want.Created) {
			t.Errorf("created %v want %v", got.Created, want.Created)
		}
		got.Created = want.Created
		if !reflect.DeepEqual(got, want) {
			t.Errorf("credential %s: got %+v want %+v", want.ID, got, want)
		}
	}
	if _, err := g.Credential([]byte("three")); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted credential is back: %v", err)
	}
	if n := g.RemainingDiscoverable(); n != DefaultMaxDiscoverable-1 {
		t.Errorf("RemainingDiscoverable %d", n)
	}
	if n, _ := g.SignCount([]byte("one")); n < 5 {
		t.Errorf("SignCount(one) after reopen %d < 5", n)
	}
	if n, _ := g.NextSignCount([]byte("one")); n <= 5 {
		t.Errorf("NextSignCount(one) after reopen %d <= 5", n)
	}
	if n, _ := g.SignCount([]byte("two")); n != 1000 {
		t.Errorf("SignCount(two) %d want 1000", n)
	}
	if n, _ := g.NextSignCount([]byte("two")); n != 1001 {
		t.Errorf("NextSignCount(two) %d want 1001", n)
	}
	if got, _ := g.PINState(); !reflect.DeepEqual(got, pin) {
		t.Errorf("PIN %+v want %+v", got, pin)
	}
	if got, _ := g.Config(); !reflect.DeepEqual(got, cfg) {
		t.Errorf("config %+v want %+v", got, cfg)
	}
	if got, _ := g.LargeBlobArray(); !bytes.Equal(got, []byte{0x80, 1, 2, 3}) {
		t.Errorf("large blob %x", got)
	}

	// Reset: new WrapKey, attestation kept, everything else gone, durable.
	must(t, g.Reset())
	must(t, g.Close())
	h := openT(t, dir, key)
	defer h.Close()
	rid, err := h.Identity()
	must(t, err)
	if bytes.Equal(rid.WrapKey, id.WrapKey) || len(rid.WrapKey) != 32 || !bytes.Equal(rid.AttestationKey, id.AttestationKey) {
		t.Errorf("identity after reset %+v", rid)
	}
	if cs, _ := h.Credentials(); len(cs) != 0 {
		t.Errorf("%d credentials after reset", len(cs))
	}
	if p, _ := h.PINState(); p.Hash != nil || p.Retries != DefaultPINRetries {
		t.Errorf("PIN after reset %+v", p)
	}
	if n, _ := h.SignCount([]byte("two")); n != 0 {
		t.Errorf("counter after reset %d", n)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileFull(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, FileOptions{MasterKey: testKey(t), MaxDiscoverable: 2})
	must(t, err)
	defer f.Close()
	must(t, f.PutCredential(sampleCred("a", true)))
	must(t, f.PutCredential(sampleCred("b", true)))
	if err := f.PutCredential(sampleCred("c", true)); !errors.Is(err, ErrFull) {
		t.Fatalf("third discoverable: %v, want ErrFull", err)
	}
	must(t, f.PutCredential(sampleCred("a", true))) // replace still fits
	must(t, f.PutCredential(sampleCred("d", false)))
	if n := f.RemainingDiscoverable(); n != 0 {
		t.Fatalf("remaining %d", n)
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	f := openT(t, dir, testKey(t))
	must(t, f.PutCredential(sampleCred("a", true)))
	defer f.Close()
	st, err := os.Stat(dir)
	must(t, err)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v", st.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	must(t, err)
	if len(ents) < 2 {
		t.Fatalf("expected state and lock files, got %d entries", len(ents))
	}
	for _, e := range ents {
		info, err := e.Info()
		must(t, err)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", e.Name(), info.Mode().Perm())
		}
	}
}

func TestFileLock(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	f := openT(t, dir, key)
	_, err := OpenFile(dir, FileOptions{MasterKey: key})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second open: %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Fatalf("lock error %q does not name pid %d", err, os.Getpid())
	}
	if strings.Count(strings.TrimSuffix(err.Error(), "."), ". ") != 0 {
		t.Errorf("lock error is not one sentence: %q", err)
	}
	must(t, f.Close())
	g := openT(t, dir, key)
	must(t, g.Close())
}

func TestFileClosed(t *testing.T) {
	f := openT(t, t.TempDir(), testKey(t))
	must(t, f.Close())
	if err := f.PutCredential(sampleCred("a", true)); err == nil {
		t.Fatal("write after Close succeeded")
	}
	if _, err := f.NextSignCount([]byte("a")); err == nil {
		t.Fatal("NextSignCount after Close succeeded")
	}
}

func TestFileTamper(t *testing.T) {
	if raceEnabled {
		// -race turns on checkptr, which aborts the process on the slices
		// bbolt makes over a damaged page before any read could fault.
		t.Skip("damaged pages abort under checkptr (-race)")
	}
	dir := t.TempDir()
	key := testKey(t)
	f := openT(t, dir, key)
	pin := PINState{Hash: []byte("0123456789abcdef"), Retries: 8}
	must(t, f.SetPINState(pin))
	must(t, f.PutCredential(sampleCred("c", true)))
	must(t, f.Close())
	path := filepath.Join(dir, StateFileName)
	orig, err := os.ReadFile(path)
	must(t, err)
	// Every record is authenticated: a change either makes the open fail
	// (*CorruptError, file untouched), or makes the changed record fail to
	// read, or touched bytes that hold nothing (free space, the spare meta
	// page). Never a panic, never altered data.
	refused, unread := 0, 0
	// Every byte of both meta pages' headers, and a stride through the rest.
	step := 9
	if testing.Short() {
		step = 31
	}
	var positions []int
	for i := 0; i < len(orig); i++ {
		if i%4096 < 128 && i < 2*4096 || i%step == 0 {
			positions = append(positions, i)
		}
	}
	for _, i := range positions {
		bad := append([]byte(nil), orig...)
		bad[i] ^= 0x41
		must(t, os.WriteFile(path, bad, 0o600))
		g, err := OpenFile(dir, FileOptions{MasterKey: key})
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "left untouched") {
				t.Fatalf("byte %d: open gave %v, want *CorruptError", i, err)
			}
			now, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(now, bad) {
				t.Fatalf("byte %d: state file was modified", i)
			}
			refused++
			continue
		}
		p, perr := g.PINState()
		c, cerr := g.Credential([]byte("c"))
		if perr == nil && !reflect.DeepEqual(p, pin) || cerr == nil && !reflect.DeepEqual(c, sampleCred("c", true)) {
			g.Close()
			t.Fatalf("byte %d: altered data read back: %+v %+v", i, p, c)
		}
		if perr != nil || cerr != nil {
			unread++
		}
		must(t, g.Close())
	}
	// Truncations.
	for _, n := range []int{0, 1, 8, 4096, len(orig) / 2, len(orig) - 1} {
		must(t, os.WriteFile(path, orig[:n], 0o600))
		if g, err := OpenFile(dir, FileOptions{MasterKey: key}); err == nil {
			p, perr := g.PINState()
			c, cerr := g.Credential([]byte("c"))
			g.Close()
			if perr == nil && !reflect.DeepEqual(p, pin) || cerr == nil && !reflect.DeepEqual(c, sampleCred("c", true)) {
				t.Fatalf("truncated to %d: altered data read back", n)
			}
		}
	}
	// Wrong master key.
	must(t, os.WriteFile(path, orig, 0o600))
	if _, err := OpenFile(dir, FileOptions{MasterKey: testKey(t)}); !errors.As(err, new(*CorruptError)) {
		t.Fatalf("wrong key: %v", err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("wrong key: state file was modified")
	}
	g := openT(t, dir, key)
	must(t, g.Close())
	t.Logf("changed each of %d bytes: %d refused at open, %d failed to read, the rest held nothing", len(positions), refused, unread)
}

// TestFileNoPlaintext stores known secrets and checks that no file in the
// state folder contains them.
func TestFileNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	f := openT(t, dir, testKey(t))
	keyBlob := []byte("SECRET-KEYBLOB-0123456789abcdef-0123456789")
	pinHash := []byte("PINHASH-fedcba98")
	wrap := []byte("WRAPKEY-0123456789abcdef01234567")
	c := sampleCred("cred", true)
	c.KeyBlob = keyBlob
	must(t, f.PutCredential(c))
	must(t, f.SetPINState(PINState{Hash: pinHash, Retries: 8, CodePoints: 4}))
	must(t, f.SetIdentity(&Identity{WrapKey: wrap}))
	defer f.Close()
	ents, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		for _, secret := range [][]byte{keyBlob, pinHash, wrap, c.CredRandomWithUV, []byte("example.com")} {
			if bytes.Contains(b, secret) {
				t.Errorf("%s contains %q in plaintext", e.Name(), secret)
			}
		}
	}
}

// TestFileCountersSurviveCrash reopens without Close (the lock is released
// by closing its descriptor, as a dying process would) after NextSignCount
// calls that did not persist anything by themselves.
func TestFileCountersSurviveCrash(t *testing.T) {
	dir := t.TempDir()
	key := testKey(t)
	ids := [][]byte{[]byte("a"), []byte("b")}
	var max [2]uint32
	for round := 0; round < 5; round++ {
		f, err := OpenFile(dir, FileOptions{MasterKey: key, ReserveBlock: 16})
		must(t, err)
		for i, id := range ids {
			first, err := f.NextSignCount(id)
			must(t, err)
			if first <= max[i] {
				t.Fatalf("round %d: %s counter %d after seeing %d", round, id, first, max[i])
			}
			max[i] = first
			for n := 0; n < 37*(round+1); n++ {
				v, err := f.NextSignCount(id)
				must(t, err)
				if v != max[i]+1 {
					t.Fatalf("counter jumped from %d to %d within a session", max[i], v)
				}
				max[i] = v
			}
		}
		// Simulated crash: drop the files without Close.
		f.crashClose()
	}
}

func TestFileCounterExhausted(t *testing.T) {
	f := openT(t, t.TempDir(), testKey(t))
	defer f.Close()
	id := []byte("x")
	must(t, f.PutCredential(sampleCred("x", false)))
	must(t, f.SetSignCount(id, 1<<32-2))
	n, err := f.NextSignCount(id)
	must(t, err)
	if n != 1<<32-1 {
		t.Fatalf("got %d", n)
	}
	if _, err := f.NextSignCount(id); !errors.Is(err, ErrCounterExhausted) {
		t.Fatalf("got %v, want ErrCounterExhausted", err)
	}
}

// TestFileFailedWriteChangesNothing: a replacing write that does not fit
// (ErrFull) is one transaction, so the credential it would replace stays.
func TestFileFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFile(dir, FileOptions{MasterKey: testKey(t), MaxDiscoverable: 1})
	must(t, err)
	defer f.Close()
	a := sampleCred("a", true)
	must(t, f.PutCredential(a))
	b := sampleCred("b", true)
	b.RPID = "other.example"
	if err := f.PutCredential(b); !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	// Replacing a's user: fits, since a goes in the same write.
	a2 := sampleCred("a2", true)
	a2.UserID = a.UserID
	replaced, err := f.PutDiscoverable(a2)
	must(t, err)
	if len(replaced) != 1 || string(replaced[0]) != "a" {
		t.Fatalf("replaced %q", replaced)
	}
	if _, err := f.Credential([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replaced credential still there: %v", err)
	}
	if n, _ := f.DiscoverableCount(); n != 1 {
		t.Fatalf("count %d", n)
	}
}

func TestLockedErrorMessage(t *testing.T) {
	e := &LockedError{Dir: "/x", PID: 42}
	if !strings.Contains(e.Error(), "process 42") {
		t.Fatal(e.Error())
	}
	e.PID = 0
	if strings.Contains(e.Error(), "0") {
		t.Fatal(e.Error())
	}
	_ = fmt.Sprint(e)
}

// TestFileConcurrentCounters checks that concurrent NextSignCount calls
// (crossing many reservations) never hand out a value twice.
func TestFileConcurrentCounters(t *testing.T) {
	f, err := OpenFile(t.TempDir(), FileOptions{MasterKey: testKey(t), ReserveBlock: 4})
	must(t, err)
	defer f.Close()
	const workers, each = 4, 300
	results := make(chan uint32, workers*each)
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				v, err := f.NextSignCount([]byte("shared"))
				if err != nil {
					errs <- err
					return
				}
				results <- v
				if i%50 == 0 {
					if err := f.PutCredential(sampleCred(fmt.Sprint("w", i), false)); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		must(t, <-errs)
	}
	close(results)
	seen := map[uint32]bool{}
	for v := range results {
		if seen[v] {
			t.Fatalf("value %d handed out twice", v)
		}
		seen[v] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d values", len(seen))
	}
}

// crashClose drops the store's files as a dying process would: bbolt
// writes nothing on Close, every commit is already on disk.
func (f *File) crashClose() {
	f.closed.Store(true)
	_ = f.db.Close()
	_ = syscall.Flock(int(f.lock.Fd()), syscall.LOCK_UN)
	_ = f.lock.Close()
}

// TestFileUnstoredLeaveNothing: counting signatures for 5,000 credentials
// that are not stored (non-discoverable device-bound ones, U2F key handles)
// adds no record to the store: they share the global counter, whose
// values never repeat (issue 14).
func TestFileUnstoredLeaveNothing(t *testing.T) {
	f := openT(t, t.TempDir(), testKey(t))
	defer f.Close()
	records := func() int {
		n := 0
		must(t, f.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
				n += b.Stats().KeyN
				return nil
			})
		}))
		return n
	}
	before := records()
	var last uint32
	for i := range 5000 {
		n, err := f.NextSignCount([]byte(fmt.Sprintf("unstored-%d", i)))
		must(t, err)
		if n <= last {
			t.Fatalf("global counter went from %d to %d", last, n)
		}
		last = n
	}
	if after := records(); after != before+1 { // the global counter's record
		t.Fatalf("%d records before, %d after", before, after)
	}
}

// TestFileReadersDoNotWaitForWriter: reads complete while a write
// transaction is open (as during its commit and fsync): bbolt readers see
// the last committed state and no Go lock is held across a commit.
func TestFileReadersDoNotWaitForWriter(t *testing.T) {
	f := openT(t, t.TempDir(), testKey(t))
	defer f.Close()
	c := sampleCred("a", true)
	must(t, f.PutCredential(c))
	inTx, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = f.update(func(tx *bolt.Tx) error {
			close(inTx)
			<-release
			return nil
		})
	}()
	<-inTx
	done := make(chan error, 1)
	go func() {
		_, err := f.Credential([]byte("nope"))
		if !errors.Is(err, ErrNotFound) {
			done <- fmt.Errorf("Credential: %v", err)
			return
		}
		h := CounterKey([]byte(c.RPID))
		if cs, err := f.DiscoverableCredentials(h[:]); err != nil || len(cs) != 1 {
			done <- fmt.Errorf("DiscoverableCredentials: %d, %v", len(cs), err)
			return
		}
		if _, err := f.PINState(); err != nil {
			done <- err
			return
		}
		if _, err := f.SignCount([]byte("a")); err != nil {
			done <- err
			return
		}
		_, err = f.NextSignCount([]byte("a")) // within its reservation
		done <- err
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("reads waited for the open write transaction")
	}
	close(release)
}
