// healthy: the control case. Bursts of workers fan out, finish and are collected, so
// the goroutine count rises and falls but does not climb.
package main

import (
	"flag"
	"sync"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	rate  = flag.Float64("rate", 4, "bursts per second")
	burst = flag.Int("burst", 200, "workers per burst")
	work  = flag.Duration("work", 100*time.Millisecond, "how long each worker runs")
)

func fanOut(n int) {
	var wg sync.WaitGroup
	results := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(*work)
			results <- i
		}(i)
	}
	wg.Wait()
	close(results)
	for range results {
	}
}

func main() {
	flag.Parse()
	for range load.Ticks(*rate) {
		go fanOut(*burst)
	}
}
