// Package load is the traffic every shipped example runs under: a tick every 1/rate
// seconds until -duration is over, and the live goroutine count printed every -report.
// The examples' go statements stay in their own main.go (a creation site there is the
// lesson); this package adds one goroutine of its own, created in Ticks, in every example.
package load

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

var (
	duration = flag.Duration("duration", 0, "stop after this long (0: run until killed)")
	report   = flag.Duration("report", time.Second, "print the live goroutine count this often")
)

// Ticks delivers 1, 2, 3, ... every 1/rate seconds and is closed once -duration is over
// (never, with 0). It prints goroutines=N every -report and once more before closing.
func Ticks(rate float64) <-chan int {
	if rate <= 0 || *report <= 0 {
		fmt.Fprintln(os.Stderr, "-rate and -report must be greater than zero")
		os.Exit(2)
	}
	ticks := make(chan int)
	go func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		rep := time.NewTicker(*report)
		defer rep.Stop()
		var stop <-chan time.Time
		if *duration > 0 {
			stop = time.After(*duration)
		}
		for n := 1; ; {
			select {
			case <-tick.C:
				ticks <- n // main starts that tick's work, then waits for the next
				n++
			case <-rep.C:
				fmt.Printf("goroutines=%d\n", runtime.NumGoroutine())
			case <-stop:
				fmt.Printf("goroutines=%d\n", runtime.NumGoroutine())
				close(ticks)
				return
			}
		}
	}()
	return ticks
}
