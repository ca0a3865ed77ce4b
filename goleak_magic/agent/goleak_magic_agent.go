// Added to package main by goleak_magic at build time with `go build -overlay`; the
// program's own source is never touched.
//
// When GOLEAK_MAGIC_AGENT names a unix socket path, this serves the runtime/pprof
// goroutine profiles there, over a minimal HTTP/1.1 (it does not import net/http, so the
// program's own HTTP servers and http.DefaultServeMux see nothing new). It prints
// nothing and keeps no goroutine of its own: a timer looks for a waiting connection
// every goleakMagicAgentPoll and serves it from the timer's short-lived goroutine, so
// runtime.NumGoroutine and goroutine-leak checks in the program's tests count only the
// program's goroutines. That goroutine carries the pprof label goleak_magic=agent and
// goleak_magic leaves it out of its tables. Streaming an execution trace is the one
// exception (goleak_magic_agent_trace.go): while it runs, two goroutines carrying the
// same label (and runtime/trace's own writer) stream it. Every package-level name and import alias
// starts with goleakMagic so it cannot clash with the program's identifiers.

package main

import (
	goleakMagicBufio "bufio"
	goleakMagicBytes "bytes"
	goleakMagicContext "context"
	goleakMagicNet "net"
	goleakMagicOS "os"
	goleakMagicRuntime "runtime"
	goleakMagicPprof "runtime/pprof"
	goleakMagicStrconv "strconv"
	goleakMagicStrings "strings"
	goleakMagicTime "time"
)

const (
	goleakMagicAgentEnv  = "GOLEAK_MAGIC_AGENT"
	goleakMagicAgentPoll = 50 * goleakMagicTime.Millisecond
)

var (
	goleakMagicAgentListener *goleakMagicNet.UnixListener
	goleakMagicAgentTimer    *goleakMagicTime.Timer
	goleakMagicAgentLabels   = goleakMagicPprof.WithLabels(goleakMagicContext.Background(),
		goleakMagicPprof.Labels("goleak_magic", "agent"))
	// Bytes per goroutine of the last dump: a buffer that fits at the first try means
	// one stop-the-world, where pprof's doubling from 1 MB takes several.
	goleakMagicAgentPerG = 256
)

func init() {
	path := goleakMagicOS.Getenv(goleakMagicAgentEnv)
	if path == "" {
		return
	}
	// Children of the program must not try to serve on the same socket.
	goleakMagicOS.Unsetenv(goleakMagicAgentEnv)
	ln, err := goleakMagicNet.ListenUnix("unix", &goleakMagicNet.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return // goleak_magic notices the missing socket and says so
	}
	goleakMagicAgentListener = ln
	goleakMagicAgentTimer = goleakMagicTime.AfterFunc(goleakMagicAgentPoll, goleakMagicAgentServe)
}

// goleakMagicAgentServe answers the connections waiting now, then sleeps again.
func goleakMagicAgentServe() {
	goleakMagicPprof.SetGoroutineLabels(goleakMagicAgentLabels)
	for {
		// A deadline just ahead: accept what is queued, never wait for more.
		goleakMagicAgentListener.SetDeadline(goleakMagicTime.Now().Add(goleakMagicTime.Millisecond))
		conn, err := goleakMagicAgentListener.AcceptUnix()
		if err != nil {
			break
		}
		goleakMagicAgentHandle(conn)
	}
	goleakMagicAgentTimer.Reset(goleakMagicAgentPoll)
}

// goleakMagicAgentHandle reads one request ("GET /path?query HTTP/1.1" and headers) and
// writes one response, then closes the connection.
func goleakMagicAgentHandle(conn *goleakMagicNet.UnixConn) {
	kept := false // a streaming reply keeps the connection past this call
	defer func() {
		if !kept {
			conn.Close()
		}
	}()
	conn.SetReadDeadline(goleakMagicTime.Now().Add(5 * goleakMagicTime.Second))
	r := goleakMagicBufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if goleakMagicStrings.TrimSpace(h) == "" {
			break
		}
	}
	conn.SetReadDeadline(goleakMagicTime.Time{})
	// A client that stops reading must not keep the agent busy for ever.
	conn.SetWriteDeadline(goleakMagicTime.Now().Add(5 * goleakMagicTime.Minute))
	fields := goleakMagicStrings.Fields(line)
	if len(fields) < 2 {
		goleakMagicAgentReply(conn, 400, "text/plain", nil, []byte("bad request\n"))
		return
	}
	path, query, _ := goleakMagicStrings.Cut(fields[1], "?")
	debug, _ := goleakMagicStrconv.Atoi(goleakMagicAgentParam(query, "debug"))
	switch path {
	case "/":
		leak := goleakMagicPprof.Lookup("goroutineleak") != nil
		body := `{"agent":"goleak_magic","pid":` + goleakMagicStrconv.Itoa(goleakMagicOS.Getpid()) +
			`,"go":"` + goleakMagicRuntime.Version() + `","goroutineleak":` +
			goleakMagicStrconv.FormatBool(leak) + "}\n"
		goleakMagicAgentReply(conn, 200, "application/json", nil, []byte(body))
	case "/debug/pprof/goroutine", "/debug/pprof/goroutineleak":
		name := path[len("/debug/pprof/"):]
		p := goleakMagicPprof.Lookup(name)
		if p == nil {
			goleakMagicAgentReply(conn, 404, "text/plain", nil, []byte("no "+name+" profile in this Go\n"))
			return
		}
		var buf goleakMagicBytes.Buffer
		p.WriteTo(&buf, debug)
		goleakMagicAgentReply(conn, 200, "text/plain; charset=utf-8", nil, buf.Bytes())
	case "/goleak/dump":
		goleakMagicAgentDump(conn, goleakMagicAgentParam(query, "leak") == "1")
	default:
		var handled bool
		handled, kept = goleakMagicAgentTraceHandle(conn, path, query)
		if !handled {
			goleakMagicAgentReply(conn, 404, "text/plain", nil, []byte("not found\n"))
		}
	}
}

// goleakMagicAgentDump writes every goroutine's stack (the debug=2 text). With leak it
// first runs the GC's leak detection, so proven leaks show "(leaked)" in their header.
// X-Goleak-Pause-Ns says how long the world was stopped for the dump.
func goleakMagicAgentDump(conn *goleakMagicNet.UnixConn, leak bool) {
	if leak {
		p := goleakMagicPprof.Lookup("goroutineleak")
		leak = p != nil
		if leak {
			var discard goleakMagicBytes.Buffer
			p.WriteTo(&discard, 1)
		}
	}
	count := goleakMagicRuntime.NumGoroutine() + 16
	size := count*goleakMagicAgentPerG + count*goleakMagicAgentPerG/4 + 4096
	var buf []byte
	var pause goleakMagicTime.Duration
	for {
		buf = make([]byte, size)
		start := goleakMagicTime.Now()
		n := goleakMagicRuntime.Stack(buf, true)
		pause += goleakMagicTime.Since(start)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		size *= 2
	}
	goleakMagicAgentPerG = len(buf)/count + 1
	goleakMagicAgentReply(conn, 200, "text/plain; charset=utf-8", []string{
		"X-Goleak-Pause-Ns: " + goleakMagicStrconv.FormatInt(int64(pause), 10),
		"X-Goleak-Leak: " + goleakMagicStrconv.FormatBool(leak),
	}, buf)
}

func goleakMagicAgentReply(conn *goleakMagicNet.UnixConn, code int, ctype string, extra []string, body []byte) {
	head := "HTTP/1.1 " + goleakMagicStrconv.Itoa(code) + " " + map[int]string{
		200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
		501: "Not Implemented"}[code] + "\r\n" +
		"Content-Type: " + ctype + "\r\n" +
		"Content-Length: " + goleakMagicStrconv.Itoa(len(body)) + "\r\n" +
		"Connection: close\r\n"
	for _, h := range extra {
		head += h + "\r\n"
	}
	conn.Write([]byte(head + "\r\n"))
	conn.Write(body)
}

func goleakMagicAgentParam(query, key string) string {
	for _, kv := range goleakMagicStrings.Split(query, "&") {
		if k, v, _ := goleakMagicStrings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}
