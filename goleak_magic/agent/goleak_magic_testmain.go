// Added to a package's tests by goleak_magic at build time (`go test -c -overlay`); the
// package's own source is never touched.
//
// When GOLEAK_MAGIC_FINAL names a file, this TestMain runs the tests (m.Run), lets the
// goroutines they left settle, and writes the final snapshot to that file before the
// process exits with m.Run's code: one JSON line about the snapshot, then the
// goroutineleak?debug=2 dump (every goroutine, "(leaked)" on the ones the GC proved can
// never wake up; Go 1.27, or Go 1.26 built with GOEXPERIMENT=goroutineleakprofile), or
// goroutine?debug=2 where this Go has no leak profile. The file appears whole (written
// aside, then renamed) or not at all. Without the variable nothing changes.
//
// Settling: goroutines a test started may still be on their way to exit or to block when
// m.Run returns. The goroutine list is read until two reads in a row show the same
// goroutines in the same states and none of them running or runnable, sleeping between
// reads 1 µs, doubling up to 100 ms, for at most 20 reads (~0.43 s in all; goleak's Find
// uses the same bound). A test that leaves a busy goroutine is snapshotted after the
// last read, marked unsettled.
//
// A package with its own TestMain has it renamed goleakMagicUserTestMain in an overlaid
// copy of its file, and that file's os.Exit calls come here (goleakMagicTestExit); see
// goleak_magic/agent/testmain.py for the rules. Every name starts with goleakMagicTest so
// it cannot clash with the package's identifiers. The goroutine writing the snapshot is
// the main one, which ran the tests; goleak_magic knows it by this file in its stack.

package main

import (
	goleakMagicTestBytes "bytes"
	goleakMagicTestOS "os"
	goleakMagicTestRuntime "runtime"
	goleakMagicTestPprof "runtime/pprof"
	goleakMagicTestStrconv "strconv"
	goleakMagicTestStrings "strings"
	goleakMagicTestTesting "testing"
	goleakMagicTestTime "time"
)

const (
	goleakMagicTestEnv      = "GOLEAK_MAGIC_FINAL"
	goleakMagicTestReads    = 20
	goleakMagicTestFirstGap = goleakMagicTestTime.Microsecond
	goleakMagicTestMaxGap   = 100 * goleakMagicTestTime.Millisecond
)

var (
	goleakMagicTestPath string
	// The package's own TestMain, renamed, when it has one (set by its overlaid copy).
	goleakMagicTestWrapped func(*goleakMagicTestTesting.M)
)

func init() {
	goleakMagicTestPath = goleakMagicTestOS.Getenv(goleakMagicTestEnv)
	// A test that starts this binary again (a re-exec'd child) must not write our file.
	goleakMagicTestOS.Unsetenv(goleakMagicTestEnv)
}

func TestMain(m *goleakMagicTestTesting.M) {
	if goleakMagicTestWrapped != nil {
		goleakMagicTestWrapped(m)
		// It returned without os.Exit: the generated main exits with m.Run's code.
		goleakMagicTestFinal()
		return
	}
	goleakMagicTestExit(m.Run())
}

// goleakMagicTestExit writes the final snapshot, then exits with code.
func goleakMagicTestExit(code int) {
	goleakMagicTestFinal()
	goleakMagicTestOS.Exit(code)
}

func goleakMagicTestFinal() {
	path := goleakMagicTestPath
	if path == "" {
		return
	}
	goleakMagicTestPath = ""
	start := goleakMagicTestTime.Now()
	reads, settled := goleakMagicTestSettle()
	settle := goleakMagicTestTime.Since(start)
	name := "goroutine"
	if goleakMagicTestPprof.Lookup("goroutineleak") != nil {
		name = "goroutineleak"
	}
	var buf goleakMagicTestBytes.Buffer
	buf.WriteString(`{"goleak_magic":"final","profile":"` + name +
		`","reads":` + goleakMagicTestStrconv.Itoa(reads) +
		`,"settled":` + goleakMagicTestStrconv.FormatBool(settled) +
		`,"settle_ns":` + goleakMagicTestStrconv.FormatInt(int64(settle), 10) +
		`,"time_ns":` + goleakMagicTestStrconv.FormatInt(goleakMagicTestTime.Now().UnixNano(), 10) +
		"}\n")
	goleakMagicTestPprof.Lookup(name).WriteTo(&buf, 2)
	tmp := path + ".part"
	if goleakMagicTestOS.WriteFile(tmp, buf.Bytes(), 0o600) == nil {
		goleakMagicTestOS.Rename(tmp, path)
	}
}

// goleakMagicTestSettle reads the goroutine list until it is stable (see the top of the
// file); it returns how many reads it took and whether the list settled.
func goleakMagicTestSettle() (int, bool) {
	gap := goleakMagicTestFirstGap
	prev := goleakMagicTestStates()
	for reads := 2; reads <= goleakMagicTestReads; reads++ {
		goleakMagicTestTime.Sleep(gap)
		cur := goleakMagicTestStates()
		if cur == prev && !goleakMagicTestStrings.Contains(cur, " [running") &&
			!goleakMagicTestStrings.Contains(cur, " [runnable") {
			return reads, true
		}
		prev = cur
		// no min(): the file is compiled at the module's language version, maybe < 1.21
		if gap *= 2; gap > goleakMagicTestMaxGap {
			gap = goleakMagicTestMaxGap
		}
	}
	return goleakMagicTestReads, false
}

// goleakMagicTestStates is the header line ("goroutine 7 [chan send]:") of every
// goroutine but the calling one (the first in runtime.Stack's output).
func goleakMagicTestStates() string {
	buf := make([]byte, 64<<10)
	for {
		n := goleakMagicTestRuntime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out goleakMagicTestStrings.Builder
	for i, line := range goleakMagicTestStrings.Split(string(buf), "\n") {
		if i > 0 && goleakMagicTestStrings.HasPrefix(line, "goroutine ") {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	return out.String()
}
