package benchpair

import (
	"errors"
	"testing"
	"time"
)

// TestCompare runs Compare in a benchmark of its own: both ops run b.N
// times, the one that sleeps is reported as the slower, and the ratio is
// measured over base.
func TestCompare(t *testing.T) {
	var slow, fast int
	var m, base time.Duration
	res := testing.Benchmark(func(b *testing.B) {
		slow, fast = 0, 0
		m, base = Compare(b, 3,
			Op{Name: "slow", Run: func() error { slow++; time.Sleep(time.Millisecond); return nil }},
			Op{Name: "fast", Run: func() error { fast++; return nil }})
	})
	if slow != res.N || fast != res.N {
		t.Errorf("ran %d and %d times, want b.N = %d each", slow, fast, res.N)
	}
	r := res.Extra["ratio"]
	if m < time.Millisecond || base >= m || r < 10 || float64(m)/float64(base) != r {
		t.Errorf("ratio %v of %v over %v: want the sleeping op over the other", r, m, base)
	}
	if res.Extra["slow-ns/op"] != float64(m.Nanoseconds()) || res.Extra["fast-ns/op"] != float64(base.Nanoseconds()) {
		t.Errorf("metrics %v, returned %v and %v", res.Extra, m, base)
	}
}

// TestCompareFails: an op's error fails the benchmark.
func TestCompareFails(t *testing.T) {
	res := testing.Benchmark(func(b *testing.B) {
		Compare(b, 1, Op{Name: "bad", Run: func() error { return errors.New("broken") }}, Op{Name: "ok", Run: func() error { return nil }})
	})
	if res.N != 0 {
		t.Errorf("a failing op gave a result: %+v", res)
	}
}
