// timeafter: time.After in a busy select loop, the "leak" that is not a goroutine leak.
//
// Each pass of the loop calls time.After(-timeout), which makes a new timer and channel.
// No goroutine is started, so the goroutine count stays flat whatever happens. Before
// Go 1.23 a timer stayed in the runtime's timer heap until it fired, even when nothing
// referenced its channel any more: with a long timeout and a busy loop, memory grew.
// Since Go 1.23 an unreferenced timer is garbage at once, fired or not.
//
// That new behaviour depends on the main module's go line (1.23+), and this module says
// go 1.22, so run it with GODEBUG=asynctimerchan=1 (old timers) or asynctimerchan=0 (new)
// to see both. It prints goroutines=N and heap_kb=K (live heap) every -report.
// -fixed reuses one time.Timer with Reset, the pre-1.23 cure.
package main

import (
	"flag"
	"fmt"
	"runtime"
	"time"
)

var (
	rate     = flag.Float64("rate", 20000, "messages per second through the loop")
	timeout  = flag.Duration("timeout", time.Minute, "the idle timeout passed to time.After")
	duration = flag.Duration("duration", 0, "stop after this long (0: run until killed)")
	fixed    = flag.Bool("fixed", false, "reuse one timer instead of time.After")
	report   = flag.Duration("report", time.Second, "print counts this often")
)

func produce(out chan<- int) {
	period := time.Duration(float64(time.Second) / *rate)
	batch := 1
	if period < time.Millisecond { // sleep granularity: send in batches
		batch = int(time.Millisecond / period)
		period = time.Millisecond
	}
	for i := 0; ; i++ {
		for j := 0; j < batch; j++ {
			out <- i
		}
		time.Sleep(period)
	}
}

func heapKB() uint64 {
	runtime.GC() // count live objects only
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc / 1024
}

func main() {
	flag.Parse()
	msgs := make(chan int)
	go produce(msgs)
	rep := time.NewTicker(*report)
	defer rep.Stop()
	var stop <-chan time.Time
	if *duration > 0 {
		stop = time.After(*duration)
	}
	idle := time.NewTimer(*timeout)
	handled := 0
	for {
		var expired <-chan time.Time
		if *fixed {
			idle.Reset(*timeout) // one timer, re-armed on every pass
			expired = idle.C
		} else {
			expired = time.After(*timeout) // a new timer on every pass
		}
		select {
		case <-msgs:
			handled++
		case <-expired:
			fmt.Println("idle for", *timeout)
		case <-rep.C:
			fmt.Printf("goroutines=%d\nheap_kb=%d\n", runtime.NumGoroutine(), heapKB())
		case <-stop:
			fmt.Printf("goroutines=%d\nheap_kb=%d\nhandled=%d\n", runtime.NumGoroutine(), heapKB(), handled)
			return
		}
	}
}
