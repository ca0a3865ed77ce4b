// gen writes the seed corpus of FuzzConvert: real execution traces of a small program
// (creations, channel and mutex blocks, ends) recorded by the Go that runs it, whole and
// cut in half, named after that Go version.
//
//	go run ./gen testdata/fuzz/FuzzConvert
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"goleak_magic/tracecv/internal/sample"
)

func main() {
	dir := os.Args[1]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	if err := sample.Record(&buf, 20); err != nil {
		panic(err)
	}
	data := buf.Bytes()
	for name, b := range map[string][]byte{"full": data, "half": data[:len(data)/2]} {
		path := filepath.Join(dir, runtime.Version()+"-"+name)
		if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			panic(err)
		}
	}
}
