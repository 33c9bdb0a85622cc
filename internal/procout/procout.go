// Package procout collects what a child process writes, for tests and
// harnesses that read it while the process runs.
package procout

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use: exec.Cmd's copying
// goroutines write to it while the caller reads it. The zero value is an
// empty buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
