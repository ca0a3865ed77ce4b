// Part of the goleak_magic agent (see goleak_magic_agent.go): the execution tracer and
// the runtime/metrics goroutine counts.
//
//	/goleak/trace?seconds=S   runtime/trace streamed in the reply until S seconds pass
//	                          (0: no limit) or the client closes the connection
//	/goleak/metrics           runtime/metrics goroutine counts as JSON; the names this
//	                          Go does not have are absent
//	/goleak/flight/...        the flight recorder (goleak_magic_agent_flight.go)

package main

import (
	goleakMagicNet "net"
	goleakMagicMetrics "runtime/metrics"
	goleakMagicTrace "runtime/trace"
	goleakMagicStrconv "strconv"
	goleakMagicStrings "strings"
	goleakMagicSync "sync"
	goleakMagicTime "time"
)

var goleakMagicAgentMetricNames = []string{
	"/sched/goroutines:goroutines",
	"/sched/goroutines/running:goroutines",
	"/sched/goroutines/runnable:goroutines",
	"/sched/goroutines/waiting:goroutines",
	"/sched/goroutines/not-in-go:goroutines",
	"/sched/goroutines-created:goroutines",
	"/sched/gomaxprocs:threads",
}

// goleakMagicAgentTraceHandle serves the paths of this file. kept: the connection now
// belongs to a streaming goroutine, which closes it.
func goleakMagicAgentTraceHandle(conn *goleakMagicNet.UnixConn, path, query string) (handled, kept bool) {
	switch {
	case path == "/goleak/trace":
		return true, goleakMagicAgentTraceStream(conn, query)
	case path == "/goleak/metrics":
		goleakMagicAgentMetricsReply(conn)
		return true, false
	case goleakMagicStrings.HasPrefix(path, "/goleak/flight"):
		goleakMagicAgentFlightHandle(conn, path[len("/goleak/flight"):], query)
		return true, false
	}
	return false, false
}

// goleakMagicAgentTraceWriter sends the reply's head before the first trace bytes, so a
// trace.Start that fails can still answer 409; a failed write ends the stream.
type goleakMagicAgentTraceWriter struct {
	conn   *goleakMagicNet.UnixConn
	headed bool
	stop   func()
}

func (w *goleakMagicAgentTraceWriter) Write(p []byte) (int, error) {
	if !w.headed {
		w.headed = true
		if _, err := w.conn.Write([]byte(goleakMagicAgentStreamHead)); err != nil {
			w.stop()
			return 0, err
		}
	}
	n, err := w.conn.Write(p)
	if err != nil {
		w.stop()
	}
	return n, err
}

const goleakMagicAgentStreamHead = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"

func goleakMagicAgentTraceStream(conn *goleakMagicNet.UnixConn, query string) bool {
	seconds, _ := goleakMagicStrconv.ParseFloat(goleakMagicAgentParam(query, "seconds"), 64)
	done := make(chan struct{})
	var once goleakMagicSync.Once
	stop := func() { once.Do(func() { close(done) }) }
	w := &goleakMagicAgentTraceWriter{conn: conn, stop: stop}
	// No write deadline: the stream lasts as long as the client wants it.
	conn.SetWriteDeadline(goleakMagicTime.Time{})
	if err := goleakMagicTrace.Start(w); err != nil {
		goleakMagicAgentReply(conn, 409, "text/plain", nil, []byte(err.Error()+"\n"))
		return false
	}
	go func() { // the client closing its end is the usual way to stop
		var b [1]byte
		conn.Read(b[:])
		stop()
	}()
	go func() {
		var limit <-chan goleakMagicTime.Time
		if seconds > 0 {
			t := goleakMagicTime.NewTimer(goleakMagicTime.Duration(seconds * float64(goleakMagicTime.Second)))
			defer t.Stop()
			limit = t.C
		}
		select {
		case <-done:
		case <-limit:
		}
		goleakMagicTrace.Stop() // flushes the rest through w
		// A trace with no bytes at all still gets a reply.
		if !w.headed {
			conn.Write([]byte(goleakMagicAgentStreamHead))
		}
		conn.Close()
	}()
	return true
}

func goleakMagicAgentMetricsReply(conn *goleakMagicNet.UnixConn) {
	known := map[string]bool{}
	for _, d := range goleakMagicMetrics.All() {
		known[d.Name] = true
	}
	var samples []goleakMagicMetrics.Sample
	for _, name := range goleakMagicAgentMetricNames {
		if known[name] {
			samples = append(samples, goleakMagicMetrics.Sample{Name: name})
		}
	}
	goleakMagicMetrics.Read(samples)
	body := `{"time_ns":` + goleakMagicStrconv.FormatInt(goleakMagicTime.Now().UnixNano(), 10) + `,"metrics":{`
	for i, s := range samples {
		if i > 0 {
			body += ","
		}
		var v uint64
		if s.Value.Kind() == goleakMagicMetrics.KindUint64 {
			v = s.Value.Uint64()
		}
		body += goleakMagicStrconv.Quote(s.Name) + ":" + goleakMagicStrconv.FormatUint(v, 10)
	}
	goleakMagicAgentReply(conn, 200, "application/json", nil, []byte(body+"}}\n"))
}
