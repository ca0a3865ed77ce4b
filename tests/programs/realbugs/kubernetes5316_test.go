package realbugs

// Kubernetes #5316 (apiserver, finishRequest; GoBench kubernetes#5316). The request runs
// in a goroutine that reports its result on unbuffered channels while the caller selects
// on them and on a timeout. When the timeout wins, nobody receives: the goroutine blocks
// on its send for ever. Shape: goroutine blocked on an unbuffered result channel after its
// caller timed out. Upstream fix: buffered channels.

import (
	"errors"
	"testing"
	"time"
)

var errTimeout = errors.New("request timed out")

func finishRequest(timeout time.Duration, fn func() (string, error)) (string, error) {
	result := make(chan string)
	errCh := make(chan error)
	go func() {
		res, err := fn()
		if err != nil {
			errCh <- err
			return
		}
		result <- res // BUG: unbuffered; nobody receives once finishRequest timed out
	}()
	select {
	case err := <-errCh:
		return "", err
	case res := <-result:
		return res, nil
	case <-time.After(timeout):
		return "", errTimeout
	}
}

func TestKubernetes5316(t *testing.T) {
	storage := make(chan struct{}) // the slow storage call answers after the timeout
	_, err := finishRequest(time.Millisecond, func() (string, error) {
		<-storage
		return "pod", nil
	})
	if err != errTimeout {
		t.Fatalf("got %v, want a timeout", err)
	}
	close(storage)
}
