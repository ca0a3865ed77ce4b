// Added to package main by goleak_magic at build time with `go build -overlay`; the
// program's own source is never touched.
//
// When GOLEAK_MAGIC_AGENT names a unix socket path, this serves the runtime/pprof
// goroutine profiles on a private mux there (never on http.DefaultServeMux, so the
// program's own HTTP servers expose nothing new). It prints nothing. Its goroutines
// carry the pprof label goleak_magic=agent so goleak_magic leaves them out of its
// tables. Every package-level name and import alias starts with goleakMagic so it
// cannot clash with the program's identifiers.

package main

import (
	goleakMagicContext "context"
	goleakMagicIO "io"
	goleakMagicLog "log"
	goleakMagicNet "net"
	goleakMagicHTTP "net/http"
	goleakMagicOS "os"
	goleakMagicRuntime "runtime"
	goleakMagicPprof "runtime/pprof"
	goleakMagicStrconv "strconv"
	goleakMagicSync "sync"
	goleakMagicTime "time"
)

const goleakMagicAgentEnv = "GOLEAK_MAGIC_AGENT"

func init() {
	path := goleakMagicOS.Getenv(goleakMagicAgentEnv)
	if path == "" {
		return
	}
	// Children of the program must not try to serve on the same socket.
	goleakMagicOS.Unsetenv(goleakMagicAgentEnv)
	ln, err := goleakMagicNet.Listen("unix", path)
	if err != nil {
		return // goleak_magic notices the missing socket and says so
	}
	mux := goleakMagicHTTP.NewServeMux()
	mux.HandleFunc("/", goleakMagicAgentInfo)
	mux.HandleFunc("/debug/pprof/goroutine", goleakMagicAgentProfile("goroutine"))
	mux.HandleFunc("/debug/pprof/goroutineleak", goleakMagicAgentProfile("goroutineleak"))
	mux.HandleFunc("/goleak/dump", goleakMagicAgentDump)
	srv := &goleakMagicHTTP.Server{
		Handler:  mux,
		ErrorLog: goleakMagicLog.New(goleakMagicIO.Discard, "", 0),
	}
	labels := goleakMagicPprof.Labels("goleak_magic", "agent")
	go goleakMagicPprof.Do(goleakMagicContext.Background(), labels,
		func(goleakMagicContext.Context) { srv.Serve(ln) })
}

// goleakMagicAgentInfo says who is listening: pid, Go version, leak profile or not.
func goleakMagicAgentInfo(w goleakMagicHTTP.ResponseWriter, r *goleakMagicHTTP.Request) {
	leak := goleakMagicPprof.Lookup("goroutineleak") != nil
	w.Header().Set("Content-Type", "application/json")
	goleakMagicIO.WriteString(w, `{"agent":"goleak_magic","pid":`+
		goleakMagicStrconv.Itoa(goleakMagicOS.Getpid())+`,"go":"`+goleakMagicRuntime.Version()+
		`","goroutineleak":`+goleakMagicStrconv.FormatBool(leak)+"}\n")
}

func goleakMagicAgentProfile(name string) goleakMagicHTTP.HandlerFunc {
	return func(w goleakMagicHTTP.ResponseWriter, r *goleakMagicHTTP.Request) {
		p := goleakMagicPprof.Lookup(name)
		if p == nil {
			goleakMagicHTTP.Error(w, "no "+name+" profile in this Go", goleakMagicHTTP.StatusNotFound)
			return
		}
		debug, _ := goleakMagicStrconv.Atoi(r.FormValue("debug"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		p.WriteTo(w, debug)
	}
}

// goleakMagicAgentDumpSize remembers the last dump's bytes per goroutine: a buffer
// that fits at the first try means one stop-the-world, where pprof's doubling from 1 MB
// takes several.
var goleakMagicAgentDumpSize struct {
	goleakMagicSync.Mutex
	perG int
}

// goleakMagicAgentDump writes every goroutine's stack (the debug=2 text). With leak=1 it
// first runs the GC's leak detection, so proven leaks show "(leaked)" in their header.
// X-Goleak-Pause-Ns says how long the world was stopped for the dump.
func goleakMagicAgentDump(w goleakMagicHTTP.ResponseWriter, r *goleakMagicHTTP.Request) {
	leak := false
	if r.FormValue("leak") == "1" {
		if p := goleakMagicPprof.Lookup("goroutineleak"); p != nil {
			p.WriteTo(goleakMagicIO.Discard, 1)
			leak = true
		}
	}
	goleakMagicAgentDumpSize.Lock()
	defer goleakMagicAgentDumpSize.Unlock()
	perG := goleakMagicAgentDumpSize.perG
	if perG == 0 {
		perG = 256
	}
	count := goleakMagicRuntime.NumGoroutine() + 16
	size := count*perG + count*perG/4 + 4096
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
	goleakMagicAgentDumpSize.perG = len(buf)/count + 1
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", goleakMagicStrconv.Itoa(len(buf)))
	w.Header().Set("X-Goleak-Pause-Ns", goleakMagicStrconv.FormatInt(int64(pause), 10))
	w.Header().Set("X-Goleak-Leak", goleakMagicStrconv.FormatBool(leak))
	w.Write(buf)
}
