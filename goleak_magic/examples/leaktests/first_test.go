package leaktests

import (
	"runtime"
	"testing"
)

// firstAnswer asks one replica per P and returns the first answer. The answer channel
// was sized for the 2-core machine it was written on: with GOMAXPROCS 4 or more, the
// replicas past the buffer block on their send for ever (with 4: one). It leaks only
// under `-cpu 4` (or on a bigger machine). The fix: make(chan int, n).
func firstAnswer(query func(int) int) int {
	n := runtime.GOMAXPROCS(0)
	answers := make(chan int, 2)
	for i := 0; i < n; i++ {
		go func(i int) {
			answers <- query(i) // BUG: buffer of 2 for n-1 late answers
		}(i)
	}
	return <-answers
}

// TestLeakUnderCPU4: clean with -test.cpu 1 or 2, leaks with -test.cpu 4.
func TestLeakUnderCPU4(t *testing.T) {
	if v := firstAnswer(func(i int) int { return 7 }); v != 7 {
		t.Fatalf("got %d, want 7", v)
	}
}
