// forgottenticker: every job starts a polling worker that is never told to stop.
//
// startPoller runs a time.Ticker loop with no cancellation: the job finishes, but its
// worker keeps waking up forever. The goroutine is not blocked for good (the ticker
// fires), so the GC cannot prove it leaked; only its growth gives it away.
// -fixed passes a done channel that the job closes when it ends.
package main

import (
	"flag"
	"sync/atomic"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	rate     = flag.Float64("rate", 20, "jobs started per second")
	interval = flag.Duration("interval", 50*time.Millisecond, "poll interval of each worker")
	fixed    = flag.Bool("fixed", false, "stop each worker when its job ends")
)

var polls atomic.Int64 // a sign of life, nothing reads it

func startPoller(done <-chan struct{}) {
	go func() {
		t := time.NewTicker(*interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				polls.Add(1)
			case <-done:
				return
			}
		}
	}()
}

func job() {
	done := make(chan struct{})
	startPoller(done)
	time.Sleep(10 * time.Millisecond)
	if *fixed {
		close(done)
	}
}

func main() {
	flag.Parse()
	for range load.Ticks(*rate) {
		go job()
	}
}
