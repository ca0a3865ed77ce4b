package leaktests

import "testing"

// merge forwards two inputs to out. A closed input is set to nil so its case is never
// chosen again; but the loop has no exit, so once both are nil the select waits on nil
// channels only and nothing can ever wake it. The fix: loop while a != nil || b != nil,
// then close(out).
func merge(a, b <-chan int, out chan<- int) {
	for {
		select { // BUG: with both inputs nil, no case can ever be ready
		case v, ok := <-a:
			if !ok {
				a = nil
				continue
			}
			out <- v
		case v, ok := <-b:
			if !ok {
				b = nil
				continue
			}
			out <- v
		}
	}
}

// TestNilChannelSelect: both inputs send and close; the caller takes every value.
func TestNilChannelSelect(t *testing.T) {
	a, b, out := make(chan int), make(chan int), make(chan int)
	go merge(a, b, out)
	go func() { a <- 1; close(a) }()
	go func() { b <- 2; close(b) }()
	if sum := <-out + <-out; sum != 3 {
		t.Fatalf("sum = %d, want 3", sum)
	}
}
