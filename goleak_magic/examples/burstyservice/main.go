// burstyservice: bursty traffic that is healthy, with one slow leak hidden in it.
//
// Every 1/-rate seconds a burst of -burst requests arrives; each request is served by
// its own goroutine that works for -work and finishes, so the goroutine count spikes
// and falls back. One request in -leak-every also records an audit event: sendAudit
// starts a goroutine that offers the event to the audit sink, and the sink gives up
// after -audit-timeout. The goroutine's send then blocks forever ("chan send"): a few
// leaked goroutines per second under spikes of hundreds that come and go.
// -fixed makes the send give up with the sink (select on the sink's done channel).
//
// -pprof ADDR serves net/http/pprof on ADDR (e.g. 127.0.0.1:6060), as a real service
// would; it prints "pprof=http://ADDR/debug/pprof/" once it listens.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	rate         = flag.Float64("rate", 2, "bursts per second")
	burst        = flag.Int("burst", 300, "requests per burst")
	work         = flag.Duration("work", 150*time.Millisecond, "how long each request works")
	leakEvery    = flag.Int("leak-every", 150, "one request in this many records an audit event")
	auditTimeout = flag.Duration("audit-timeout", 5*time.Millisecond, "how long the sink waits")
	fixed        = flag.Bool("fixed", false, "audit sends give up when the sink does")
	pprofAddr    = flag.String("pprof", "", "serve net/http/pprof on this address (empty: off)")
)

var served, audited atomic.Int64

// sendAudit hands one event to a sink that only waits -audit-timeout for it.
func sendAudit(id int64) {
	events := make(chan int64)
	sinkDone := make(chan struct{})
	go func() {
		time.Sleep(2 * *auditTimeout) // building the event is slower than the sink waits
		if *fixed {
			select {
			case events <- id:
			case <-sinkDone:
			}
			return
		}
		events <- id // blocks forever once the sink has given up
	}()
	select {
	case <-events:
		audited.Add(1)
	case <-time.After(*auditTimeout):
		close(sinkDone)
	}
}

func handle(id int64) {
	time.Sleep(*work)
	if id%int64(*leakEvery) == 0 {
		sendAudit(id)
	}
	served.Add(1)
}

func serveBurst(first int64) {
	var wg sync.WaitGroup
	for i := int64(0); i < int64(*burst); i++ {
		wg.Add(1)
		go func(id int64) {
			defer wg.Done()
			handle(id)
		}(first + i)
	}
	wg.Wait()
}

func main() {
	flag.Parse()
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pprof listen:", err)
			os.Exit(1)
		}
		fmt.Printf("pprof=http://%s/debug/pprof/\n", ln.Addr())
		go http.Serve(ln, nil)
	}
	for n := range load.Ticks(*rate) {
		go serveBurst(int64(n-1)*int64(*burst) + 1)
	}
}
