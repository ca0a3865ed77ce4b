// pprofserver: a service with its own net/http/pprof on http.DefaultServeMux, for the
// snapshot tests. It parks -n goroutines (half of them, with -drop-half, on a channel
// nothing can reach), serves on 127.0.0.1 and prints the pprof address, then waits.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
)

var keep = make(chan struct{})

func park(ch chan struct{}) { <-ch }

func main() {
	n := flag.Int("n", 100, "goroutines to park")
	dropHalf := flag.Bool("drop-half", false, "park half on a channel nothing can reach")
	flag.Parse()
	lost := make(chan struct{})
	for i := 0; i < *n; i++ {
		ch := keep
		if *dropHalf && i%2 == 1 {
			ch = lost
		}
		go park(ch)
	}
	lost = nil
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// What the agent's environment variable looks like from the program's own code.
	fmt.Printf("agent_env=%q\n", os.Getenv("GOLEAK_MAGIC_AGENT"))
	fmt.Printf("pprof=http://%s/debug/pprof/\n", ln.Addr())
	http.Serve(ln, nil)
}
