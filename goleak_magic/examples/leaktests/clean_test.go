package leaktests

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestCleanShutdown is the control: a pool of workers, a timer and a context, each shut
// down properly. It leaves no goroutine behind.
func TestCleanShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	jobs := make(chan int)
	results := make(chan int, 8)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case j := <-jobs:
					results <- j * 2
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for j := 0; j < 8; j++ {
		jobs <- j
	}
	timer := time.AfterFunc(time.Hour, func() {})
	timer.Stop()
	cancel()
	wg.Wait()
	if len(results) != 8 {
		t.Fatalf("%d results, want 8", len(results))
	}
}
