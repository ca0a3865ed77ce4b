// leakyservice: an HTTP service whose handler leaks one goroutine per timed-out request.
//
// The handler starts a backend query in a goroutine and waits for it or a timeout.
// When the timeout wins, nobody ever receives from the unbuffered channel, so the
// query goroutine blocks forever on its send: the classic "send after timeout" leak.
// -fixed gives the channel a buffer of one, which lets the send complete.
//
// A built-in client drives the service on 127.0.0.1 at -rate requests per second.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"time"

	"goleak_magic/examples/internal/load"
)

var (
	rate    = flag.Float64("rate", 50, "requests per second sent by the built-in client")
	timeout = flag.Duration("timeout", 20*time.Millisecond, "handler timeout")
	slow    = flag.Float64("slow", 0.3, "fraction of backend queries slower than the timeout")
	fixed   = flag.Bool("fixed", false, "use a buffered channel so timed-out queries can finish")
)

func query(slowQuery bool) string {
	if slowQuery {
		time.Sleep(*timeout * 2)
	} else {
		time.Sleep(*timeout / 4)
	}
	return "row"
}

func handler(w http.ResponseWriter, r *http.Request) {
	result := make(chan string)
	if *fixed {
		result = make(chan string, 1)
	}
	slowQuery := rand.Float64() < *slow
	go func() {
		result <- query(slowQuery) // leaks when the timeout below wins
	}()
	select {
	case row := <-result:
		fmt.Fprintln(w, row)
	case <-time.After(*timeout):
		http.Error(w, "timeout", http.StatusGatewayTimeout)
	}
}

func main() {
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/query", handler)
	go http.Serve(ln, mux)
	fmt.Printf("listening on %s\n", ln.Addr())

	url := "http://" + ln.Addr().String() + "/query"
	client := &http.Client{Timeout: 5 * time.Second}
	for range load.Ticks(*rate) {
		go func() {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
}
