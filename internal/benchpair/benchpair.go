// Package benchpair times an operation against the baseline it is judged
// by, side by side in one benchmark, and reports both and their ratio: the
// form of the project's speed goals (`make bench`).
package benchpair

import (
	"testing"
	"time"
)

// Op is one way of doing the work; an error fails the benchmark.
type Op struct {
	// Name labels the op's metric, NAME-ns/op.
	Name string
	Run  func() error
}

// Compare runs measured and base b.N times each, alternating in blocks of
// block runs (1 interleaves them one by one; larger blocks keep each one's
// caches warm while drift in the machine's speed still falls on both
// alike). It reports NAME-ns/op for both and "ratio", measured over base,
// and returns the two mean durations.
func Compare(b *testing.B, block int, measured, base Op) (measuredPerOp, basePerOp time.Duration) {
	b.Helper()
	block = max(block, 1)
	var dm, db time.Duration
	run := func(op Op, n int) time.Duration {
		t0 := time.Now()
		for range n {
			if err := op.Run(); err != nil {
				b.Fatalf("%s: %v", op.Name, err)
			}
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		dm += run(measured, n)
		db += run(base, n)
	}
	b.StopTimer()
	n := time.Duration(max(b.N, 1))
	measuredPerOp, basePerOp = dm/n, db/n
	b.ReportMetric(float64(measuredPerOp.Nanoseconds()), measured.Name+"-ns/op")
	b.ReportMetric(float64(basePerOp.Nanoseconds()), base.Name+"-ns/op")
	if basePerOp > 0 {
		b.ReportMetric(float64(measuredPerOp)/float64(basePerOp), "ratio")
	}
	return measuredPerOp, basePerOp
}
