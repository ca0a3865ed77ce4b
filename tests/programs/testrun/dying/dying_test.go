package dying

import (
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
	var m map[string]int
	m["x"] = 1 // a nil-map write: the panic kills the binary
}
