package leaktests

import (
	"sync"
	"testing"
)

// collect squares the valid items concurrently and returns a channel that is closed when
// all are done. A worker that meets an invalid item returns before deferring Done, so
// the goroutine waiting to close the channel waits for ever. The fix: defer wg.Done()
// first thing in the worker.
func collect(items []int) <-chan int {
	out := make(chan int, len(items))
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		go func(it int) {
			if it < 0 {
				return // BUG: returns without wg.Done()
			}
			defer wg.Done()
			out <- it * it
		}(it)
	}
	go func() {
		wg.Wait() // BUG: never satisfied: one worker skipped its Done
		close(out)
	}()
	return out
}

// TestWaitGroupNeverDone: the caller takes the results it expects and moves on.
func TestWaitGroupNeverDone(t *testing.T) {
	out := collect([]int{1, 2, -3})
	sum := <-out + <-out
	if sum != 5 {
		t.Fatalf("sum = %d, want 5", sum)
	}
}
