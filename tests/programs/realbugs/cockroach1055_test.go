package realbugs

// CockroachDB #1055 (util.Stopper; GoBench cockroach#1055). Stop() takes the stopper's
// lock and waits on its WaitGroup for the running workers; but the workers only call
// SetStopped (Done) once they see the stop signal, which Stop sends only after the
// wait. Meanwhile StartTask blocks on the lock Stop holds. Shape: a WaitGroup wait under
// a lock, its Done never coming. Upstream fix: signal the workers before waiting.

import (
	"sync"
	"testing"
)

type stopper struct {
	mu       sync.Mutex
	stop     sync.WaitGroup
	stopper  chan struct{}
	draining bool
	tasks    int
}

func (s *stopper) runWorker() {
	s.stop.Add(1)
	go func() {
		<-s.stopper   // BUG: closed only after Stop's Wait, which waits for this Done
		s.stop.Done() // SetStopped
	}()
}

func (s *stopper) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	s.stop.Wait() // BUG: the workers finish only once s.stopper is closed, below
	close(s.stopper)
}

func (s *stopper) StartTask() bool {
	s.mu.Lock() // BUG: Stop holds the lock for ever
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.tasks++
	return true
}

func TestCockroach1055(t *testing.T) {
	s := &stopper{stopper: make(chan struct{})}
	s.runWorker()
	go s.Stop()
	waitHeld(&s.mu)
	go s.StartTask()
}
