package dying

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestHang(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	wg.Wait() // BUG: no Done: the test never returns
}

func TestCrash(t *testing.T) {
	ch := make(chan int)
	go func() {
		<-ch // BUG: blocked when the binary dies
	}()
	// Crash once that goroutine is blocked, so the exit dump shows it so every run.
	buf := make([]byte, 1<<16)
	for !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "[chan receive]:\ntestrun/dying.TestCrash.func1") {
		runtime.Gosched()
	}
	var m map[string]int
	m["x"] = 1 // a nil-map write: the panic kills the binary
}
