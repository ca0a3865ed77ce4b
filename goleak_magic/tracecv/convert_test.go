package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"goleak_magic/tracecv/internal/sample"
)

// frames splits the output stream; it fails the test on a malformed one.
func frames(t *testing.T, out []byte) map[byte][][]byte {
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

func summary(t *testing.T, out []byte) Summary {
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
