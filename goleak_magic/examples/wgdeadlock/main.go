// wgdeadlock: partial deadlocks. The program as a whole runs on (so the runtime's
// "all goroutines are asleep" check never fires), but some goroutines wait for ever.
//
// -mode waitgroup: each batch does wg.Add(n) and starts n workers; a worker that fails
// returns early without wg.Done(), so the batch's collector blocks in wg.Wait() for good
// (wait reason "sync.WaitGroup.Wait" in recent Go such as 1.26; Go 1.22 said "semacquire").
//
// -mode mutex: each batch shares a mutex between its workers; a worker that fails
// returns while holding it, so every later worker of that batch blocks in mu.Lock()
// ("sync.Mutex.Lock").
//
// In both, the WaitGroup or mutex belongs to the batch alone, so once the batch is
// abandoned nothing reachable can wake its goroutines: the GC proves them leaked.
// -fixed uses defer for Done / Unlock, which runs on every return path.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sync"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	mode    = flag.String("mode", "waitgroup", "waitgroup or mutex")
	rate    = flag.Float64("rate", 10, "batches started per second")
	workers = flag.Int("workers", 4, "workers per batch")
	failure = flag.Float64("fail", 0.1, "probability that a worker fails")
	fixed   = flag.Bool("fixed", false, "release with defer on every path")
)

func work() error {
	time.Sleep(time.Millisecond)
	if rand.Float64() < *failure {
		return fmt.Errorf("backend unavailable")
	}
	return nil
}

func waitgroupWorker(wg *sync.WaitGroup) {
	if *fixed {
		defer wg.Done()
		_ = work()
		return
	}
	if err := work(); err != nil {
		return // BUG: this path forgets wg.Done()
	}
	wg.Done()
}

func waitgroupBatch() {
	var wg sync.WaitGroup
	wg.Add(*workers)
	for i := 0; i < *workers; i++ {
		go waitgroupWorker(&wg)
	}
	wg.Wait() // waits for ever once one worker failed
}

type batch struct {
	mu      sync.Mutex
	results int
}

func (b *batch) mutexWorker() {
	b.mu.Lock()
	if *fixed {
		defer b.mu.Unlock()
	}
	if err := work(); err != nil {
		return // BUG (without -fixed): returns holding b.mu
	}
	b.results++
	if !*fixed {
		b.mu.Unlock()
	}
}

func mutexBatch() {
	b := &batch{}
	for i := 0; i < *workers; i++ {
		go b.mutexWorker()
	}
}

func main() {
	flag.Parse()
	var start func()
	switch *mode {
	case "waitgroup":
		start = waitgroupBatch
	case "mutex":
		start = mutexBatch
	default:
		fmt.Fprintf(os.Stderr, "-mode must be waitgroup or mutex, not %q\n", *mode)
		os.Exit(2)
	}
	for range load.Ticks(*rate) {
		go start()
	}
}
