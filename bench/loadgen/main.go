// loadgen is the closed-loop HTTP client of the benches: -c clients, each sending GET
// -url again as soon as its last answer came, for -warm (not counted) then -d. It prints
// "served=N ok=K errors=E" for the -d part: served is every HTTP answer (leakyservice's
// 504 is its handler running to its timeout), ok the 2xx among them, so a slowed service
// that answers 504 where it answered 200 shows in ok.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "the endpoint to load")
	clients := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "counted load")
	warm := flag.Duration("warm", time.Second, "load before counting starts")
	flag.Parse()
	if *url == "" || *clients < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: give -url and -c >= 1")
		os.Exit(2)
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *clients},
	}
	var counting, stop atomic.Bool
	var served, ok, errs atomic.Int64
	var wg sync.WaitGroup
	for range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get(*url)
				good := false
				if err == nil {
					good = resp.StatusCode/100 == 2
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if !counting.Load() || stop.Load() {
					continue
				}
				switch {
				case err != nil:
					errs.Add(1)
				case good:
					served.Add(1)
					ok.Add(1)
				default:
					served.Add(1)
				}
			}
		}()
	}
	time.Sleep(*warm)
	counting.Store(true)
	time.Sleep(*dur)
	stop.Store(true)
	n, k, e := served.Load(), ok.Load(), errs.Load()
	wg.Wait()
	fmt.Printf("served=%d ok=%d errors=%d\n", n, k, e)
}
