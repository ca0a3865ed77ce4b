// tracecv converts a Go execution trace (runtime/trace, go test -trace,
// /debug/pprof/trace, a flight recorder's snapshot) into the frame stream that
// goleak_magic.exectrace loads into DataFrames. It reads the trace as a stream, so a
// long trace costs memory for its live goroutines and distinct stacks only.
//
//	tracecv [-anchor NS] [FILE]   (no FILE: stdin) > frames
//
// It exits 0 when the output was written, even for a broken trace: the end frame says
// what broke, after everything read before the break.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	anchor := flag.Int64("anchor", 0, "wall clock (ns since the epoch) of the first event, for traces without a clock snapshot")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "tracecv:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	if err := Convert(in, os.Stdout, Options{AnchorNs: *anchor}); err != nil {
		fmt.Fprintln(os.Stderr, "tracecv: writing the output:", err)
		os.Exit(1)
	}
}
