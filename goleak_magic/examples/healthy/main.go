// healthy: the control case. Bursts of workers fan out, finish and are collected, so
// the goroutine count rises and falls but does not climb.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
	"time"
)

var (
	rate     = flag.Float64("rate", 4, "bursts per second")
	burst    = flag.Int("burst", 200, "workers per burst")
	work     = flag.Duration("work", 100*time.Millisecond, "how long each worker runs")
	duration = flag.Duration("duration", 0, "stop after this long (0: run until killed)")
	report   = flag.Duration("report", time.Second, "print the live goroutine count this often")
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
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	rep := time.NewTicker(*report)
	defer rep.Stop()
	var stop <-chan time.Time
	if *duration > 0 {
		stop = time.After(*duration)
	}
	for {
		select {
		case <-tick.C:
			go fanOut(*burst)
		case <-rep.C:
			fmt.Printf("goroutines=%d\n", runtime.NumGoroutine())
		case <-stop:
			fmt.Printf("goroutines=%d\n", runtime.NumGoroutine())
			return
		}
	}
}
