package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"runtime/trace"
	"sync"
	"testing"
	"time"

	"goleak_magic/tracecv/internal/sample"

	xtrace "golang.org/x/exp/trace"
)

// frames splits the output stream; it fails the test on a malformed one.
func frames(t testing.TB, out []byte) map[byte][][]byte {
	t.Helper()
	got := map[byte][][]byte{}
	var last byte
	for len(out) > 0 {
		if len(out) < 5 {
			t.Fatalf("a frame header cut short: %d bytes", len(out))
		}
		n := binary.LittleEndian.Uint32(out[1:5])
		if uint32(len(out)-5) < n {
			t.Fatalf("frame %q cut short", out[0])
		}
		last = out[0]
		got[last] = append(got[last], out[5:5+n])
		out = out[5+n:]
	}
	if last != frameEnd {
		t.Fatalf("the last frame is %q, not the end frame", last)
	}
	return got
}

// rowsIn counts the rows of the whole C frames at the start of out (a stream still
// being written may end in part of one).
func rowsIn(out []byte) (rows int64) {
	for len(out) >= 5 {
		n := binary.LittleEndian.Uint32(out[1:5])
		if uint32(len(out)-5) < n {
			break
		}
		if out[0] == frameCreations {
			rows += int64(binary.LittleEndian.Uint32(out[5:9]))
		}
		out = out[5+n:]
	}
	return rows
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func summary(t testing.TB, out []byte) Summary {
	t.Helper()
	var s Summary
	if err := json.Unmarshal(frames(t, out)[frameEnd][0], &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func record(t testing.TB, n int) []byte {
	var buf bytes.Buffer
	if err := sample.Record(&buf, n); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func convert(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Convert(bytes.NewReader(data), &out, Options{}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestWholeTrace(t *testing.T) {
	s := summary(t, convert(t, record(t, 50)))
	if s.Error != "" || s.Creations < 100 || s.Transitions < 50 || s.Clock != "snapshot" {
		t.Fatalf("summary %+v", s)
	}
}

// A trace cut short keeps the events before the cut and says what broke.
func TestTruncatedKeepsWhatCameBefore(t *testing.T) {
	data := record(t, 2000)
	whole := summary(t, convert(t, data))
	cut := summary(t, convert(t, data[:len(data)*3/4]))
	if cut.Error == "" || cut.Events == 0 || cut.Events >= whole.Events || cut.Unsupported {
		t.Fatalf("whole %+v, cut %+v", whole, cut)
	}
}

func park(ch chan struct{}) { <-ch }

// A trace streamed from this process: its creations come out while the trace still runs
// (FlushInterval after the parser has them), and the stream stays whole to its end.
func TestRowsWhileStreaming(t *testing.T) {
	in, traced := io.Pipe()
	if err := trace.Start(traced); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- Convert(in, &out, Options{}) }()
	keep := make(chan struct{})
	defer close(keep)
	started := 0
	for deadline := time.Now().Add(30 * time.Second); rowsIn(out.Bytes()) == 0; {
		if time.Now().After(deadline) {
			trace.Stop()
			t.Fatalf("no creation rows 30 s into the stream (%d goroutines started)", started)
		}
		go park(keep)
		started++
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the conversion ended before its input did: %v", err)
	default:
	}
	trace.Stop()
	traced.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	whole := out.Bytes()
	s := summary(t, whole)
	if s.Error != "" || s.Creations < int64(started) || rowsIn(whole) != s.Creations {
		t.Fatalf("started %d, rows %d, summary %+v", started, rowsIn(whole), s)
	}
}

// A live stream waits in the read for its next generation; that wait is not time spent
// converting, so it must not flush the next generation's first rows apart from the rest.
func TestWaitForInputSplitsNothing(t *testing.T) {
	data := record(t, 500)
	rowFrames := func(out []byte) int {
		f := frames(t, out)
		return len(f[frameCreations]) + len(f[frameTransitions])
	}
	want := rowFrames(convert(t, data))
	in, w := io.Pipe()
	go func() {
		cut := len(data) - 3000
		w.Write(data[:cut])
		time.Sleep(FlushInterval + 200*time.Millisecond) // the runtime's next generation
		w.Write(data[cut:])
		w.Close()
	}()
	var out bytes.Buffer
	if err := Convert(in, &out, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := rowFrames(out.Bytes()); got != want {
		t.Fatalf("%d row frames with a wait for input, %d without", got, want)
	}
}

func TestGarbageAndUnsupported(t *testing.T) {
	s := summary(t, convert(t, []byte("not a trace at all, just text\n")))
	if s.Error == "" || s.Events != 0 {
		t.Fatalf("garbage: %+v", s)
	}
	s = summary(t, convert(t, []byte("go 1.99 trace\x00\x00\x00rest")))
	if !s.Unsupported {
		t.Fatalf("go 1.99: %+v", s)
	}
}

// FuzzConvert: whatever the bytes, the converter returns (no panic escapes) and writes a
// well-formed stream ending in the end frame. Seeds: testdata/fuzz/FuzzConvert (from
// ./gen) and a trace recorded here, whole and cut.
func FuzzConvert(f *testing.F) {
	data := record(f, 10)
	f.Add(data)
	f.Add(data[:len(data)/3])
	f.Fuzz(func(t *testing.T, b []byte) {
		out := convert(t, b)
		frames(t, out)
	})
}

// The converter against its bound, the x/exp parser alone, on one recorded trace:
// go test -run - -bench . ./goleak_magic/tracecv (bench/RESULTS.md quotes both).
var benchTrace = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if err := sample.Record(&buf, 100_000); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

func BenchmarkConvert(b *testing.B) {
	data := benchTrace()
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := Convert(bytes.NewReader(data), &out, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	events := summary(b, out.Bytes()).Events
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkParseOnly(b *testing.B) {
	data := benchTrace()
	var events int64
	for b.Loop() {
		tr, err := xtrace.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for events = 0; ; events++ {
			if _, err := tr.ReadEvent(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
