// fleetservice: one instance of a small fleet for goleak_magic's fleet tests and bench.
//
// It exports go_goroutines (client_golang's default registry) on /metrics, serves
// net/http/pprof on /debug/pprof/, and listens on the loopback address given by -addr.
// A built-in client sends -rate requests per second to handle (handler.go); -leak of
// them per second take longer than their deadline and leak one goroutine each, the
// rest finish. -idle parks that many goroutines on a pool that never grows (a steady,
// large service), and -jitter adds short-lived bursts so a healthy instance's
// goroutine count is noisy without climbing.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	addr     = flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	rate     = flag.Float64("rate", 20, "requests per second from the built-in client")
	leak     = flag.Float64("leak", 0, "of those, requests per second that time out and leak a goroutine")
	idle     = flag.Int("idle", 0, "goroutines parked on a steady worker pool")
	jitter   = flag.Int("jitter", 0, "up to this many short-lived goroutines per burst (noise)")
	deadline = flag.Duration("deadline", 50*time.Millisecond, "request deadline")
)

func main() {
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	pool := make(chan struct{})
	for i := 0; i < *idle; i++ {
		go worker(pool)
	}
	go client()
	if *jitter > 0 {
		go noise()
	}
	http.Handle("/metrics", promhttp.Handler())
	fmt.Printf("listening on %s\n", ln.Addr())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// worker waits for work that a steady pool may or may not get; it never exits.
func worker(jobs <-chan struct{}) {
	for range jobs {
	}
}

func client() {
	if *rate <= 0 {
		return
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	slowShare := *leak / *rate
	for range tick.C {
		go handle(rand.Float64() < slowShare, *deadline)
	}
}

// noise starts bursts of goroutines that live a few hundred milliseconds.
func noise() {
	for {
		n := rand.Intn(*jitter + 1)
		for i := 0; i < n; i++ {
			go time.Sleep(time.Duration(100+rand.Intn(400)) * time.Millisecond)
		}
		time.Sleep(time.Duration(200+rand.Intn(600)) * time.Millisecond)
	}
}
