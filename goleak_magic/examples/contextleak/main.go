// contextleak: two ways a context fails to stop a goroutine.
//
// -mode nocancel: each job derives ctx, cancel := context.WithCancel(base) and starts a
// progress watcher that returns on <-ctx.Done(); the job never calls cancel, so the
// watcher waits forever ("chan receive"). The server's base context keeps every child in
// its children map, so the watcher stays reachable: the GC cannot prove it leaked
// (the goroutineleak profile is silent) and the context nodes pile up too.
//
// -mode unwatched: each job gives a fetch goroutine a context with a deadline, but fetch
// sends its result on an unbuffered channel without watching ctx.Done(); when the
// deadline wins, the job is gone and the send blocks forever ("chan send"). Nothing else
// can reach that channel, so the GC proves this one leaked.
//
// -fixed calls cancel when the job ends (nocancel) and selects on ctx.Done() beside the
// send (unwatched).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	mode     = flag.String("mode", "nocancel", "nocancel or unwatched")
	rate     = flag.Float64("rate", 20, "jobs started per second")
	deadline = flag.Duration("deadline", 20*time.Millisecond, "each job's deadline (unwatched)")
	fixed    = flag.Bool("fixed", false, "cancel contexts / watch ctx.Done()")
)

var done atomic.Int64 // a sign of life, nothing reads it

func watchProgress(ctx context.Context, id int) {
	<-ctx.Done() // the only way out: somebody must cancel ctx
	done.Add(int64(id))
}

func nocancelJob(base context.Context, id int) {
	ctx, cancel := context.WithCancel(base)
	if *fixed {
		defer cancel()
	}
	go watchProgress(ctx, id)
	time.Sleep(5 * time.Millisecond) // the job's own work
}

func fetch(ctx context.Context, out chan<- int, id int) {
	time.Sleep(2 * *deadline) // slower than the deadline: the caller has given up
	if *fixed {
		select {
		case out <- id:
		case <-ctx.Done():
		}
		return
	}
	out <- id // blocks forever once the caller stopped listening
}

func unwatchedJob(base context.Context, id int) {
	ctx, cancel := context.WithTimeout(base, *deadline)
	defer cancel()
	out := make(chan int)
	go fetch(ctx, out, id)
	select {
	case v := <-out:
		done.Add(int64(v))
	case <-ctx.Done():
	}
}

func main() {
	flag.Parse()
	var job func(context.Context, int)
	switch *mode {
	case "nocancel":
		job = nocancelJob
	case "unwatched":
		job = unwatchedJob
	default:
		fmt.Fprintf(os.Stderr, "-mode must be nocancel or unwatched, not %q\n", *mode)
		os.Exit(2)
	}
	base, stopAll := context.WithCancel(context.Background()) // lives as long as the server
	defer stopAll()
	for id := range load.Ticks(*rate) {
		go job(base, id)
	}
}
