// Package sample records a real execution trace of a small program: the seeds of the
// fuzz target and the input of the converter's tests.
package sample

import (
	"io"
	"runtime/trace"
	"sync"
	"time"
)

func park(ch chan struct{}) { <-ch }

// Record traces n goroutines parked on a channel, n that contend for a mutex and end,
// and a timer wake-up, into w.
func Record(w io.Writer, n int) error {
	if err := trace.Start(w); err != nil {
		return err
	}
	keep := make(chan struct{})
	for i := 0; i < n; i++ {
		go park(keep)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	mu.Lock()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			mu.Unlock()
		}()
	}
	time.Sleep(time.Millisecond)
	mu.Unlock()
	wg.Wait()
	trace.Stop()
	close(keep) // the parked ones end, so repeated recordings (benchmarks) do not pile up
	return nil
}
