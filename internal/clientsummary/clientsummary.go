// Package clientsummary collects, across test processes, one line per
// independent client a test proved against vkey, for `make test` to print
// at its end.
//
// It is off unless VKEY_CLIENT_SUMMARY names a folder (the Makefile sets
// it): `go test` alone writes nothing.
package clientsummary

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Env names the environment variable holding the summary's folder.
const Env = "VKEY_CLIENT_SUMMARY"

// FileName is the file in that folder every test appends its lines to.
const FileName = "clients.txt"

// Status is the first word of a line.
type Status string

// The statuses a line can have.
const (
	Passed  Status = "PASS"
	Failed  Status = "FAIL"
	Skipped Status = "SKIP"
)

// Record makes t write, when it ends, one line for client: PASS with what
// it proved when t passed, FAIL when it failed, SKIP when it was skipped.
// Call it at the start of the test: the line is written by t.Cleanup,
// after every assertion of t (and of its subtests) has run.
func Record(t testing.TB, client, what string) {
	t.Helper()
	t.Cleanup(func() {
		switch {
		case t.Failed():
			Write(Failed, client, what)
		case t.Skipped():
			Write(Skipped, client, what+" (skipped: "+t.Name()+", run go test -v for why)")
		default:
			Write(Passed, client, what)
		}
	})
}

// Write appends one line now; for tests that judge each client themselves
// (one VM boot serves several). It does nothing without VKEY_CLIENT_SUMMARY
// and never fails a test: the summary is a report, not a check.
func Write(status Status, client, what string) {
	dir := os.Getenv(Env)
	if dir == "" {
		return
	}
	line := fmt.Sprintf("%-4s %s: %s\n", status, oneLine(client), oneLine(what))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "clientsummary: %v\n", err)
		return
	}
	// One write with O_APPEND: lines from test processes running at the
	// same time do not interleave.
	f, err := os.OpenFile(filepath.Join(dir, FileName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clientsummary: %v\n", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintf(os.Stderr, "clientsummary: %v\n", err)
	}
}

// oneLine keeps a field on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
