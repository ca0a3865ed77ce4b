// spawn: creates exactly -n goroutines from one go statement, each blocked forever on
// a channel that is never closed, then reports and waits. A known, exact count for
// tests and benchmarks of creation tracing and snapshots.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

var (
	n        = flag.Int("n", 1000, "goroutines to create")
	delay    = flag.Duration("delay", 0, "wait this long before creating them")
	every    = flag.Duration("every", 0, "pause between creations (0: tight loop)")
	hold     = flag.Duration("hold", 0, "exit after holding them this long (0: until killed)")
	dropHalf = flag.Bool("drop-half", false, "block half of them on a channel nothing can reach (a provable leak)")
)

var keep = make(chan struct{}) // reachable forever: goroutines on it are not provably leaked

func park(ch chan struct{}) { <-ch }

func main() {
	flag.Parse()
	time.Sleep(*delay)
	start := time.Now()
	lost := make(chan struct{})
	for i := 0; i < *n; i++ {
		ch := keep
		if *dropHalf && i%2 == 1 {
			ch = lost
		}
		go park(ch)
		if *every > 0 {
			time.Sleep(*every)
		}
	}
	lost = nil
	fmt.Printf("created=%d in %s goroutines=%d\n", *n, time.Since(start), runtime.NumGoroutine())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var stop <-chan time.Time
	if *hold > 0 {
		stop = time.After(*hold)
	}
	select {
	case <-sig:
	case <-stop:
	}
}
