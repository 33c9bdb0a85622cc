package vmtest

import "time"

// rdtsc reads the host's time-stamp counter.
func rdtsc() uint64

// hostTSCkHz measures the host's TSC frequency against the monotonic
// clock. Under TCG the guest's RDTSC returns the host's counter, so this is
// the guest's TSC frequency too. It returns 0 if no clean sample was taken.
func hostTSCkHz() uint64 {
	sample := func() (time.Time, uint64, bool) {
		for range 10 {
			t0 := time.Now()
			c := rdtsc()
			if time.Since(t0) < 20*time.Microsecond {
				return t0, c, true
			}
		}
		return time.Time{}, 0, false
	}
	t0, c0, ok0 := sample()
	time.Sleep(50 * time.Millisecond)
	t1, c1, ok1 := sample()
	ns := t1.Sub(t0).Nanoseconds()
	if !ok0 || !ok1 || ns <= 0 || c1 <= c0 {
		return 0
	}
	return (c1 - c0) * 1e6 / uint64(ns)
}
