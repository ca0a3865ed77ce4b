package realbugs

// Kubernetes #10182 (kubelet status manager; GoBench kubernetes#10182). SetPodStatus
// holds podStatusesLock while it sends on podStatusChannel; the only receiver is the
// sync loop, which, between receives, runs syncBatch and that takes podStatusesLock.
// With the loop in syncBatch and a setter holding the lock on its send, each waits for
// the other. Shape: a mutex held across a channel send whose receiver needs the mutex.
// Upstream fix: send after unlocking.

import (
	"sync"
	"testing"
)

type statusManager struct {
	podStatusesLock  sync.Mutex
	podStatuses      map[string]string
	podStatusChannel chan struct{}
	apiserver        chan struct{} // the API call syncBatch makes first
}

func (s *statusManager) SetPodStatus(pod, status string) {
	s.podStatusesLock.Lock()
	defer s.podStatusesLock.Unlock()
	s.podStatuses[pod] = status
	s.podStatusChannel <- struct{}{} // BUG: sends with podStatusesLock held
}

func (s *statusManager) syncLoop() {
	for range s.podStatusChannel {
		s.syncBatch()
	}
}

func (s *statusManager) syncBatch() {
	<-s.apiserver
	s.podStatusesLock.Lock() // BUG: held by a setter blocked on its send to us
	for pod := range s.podStatuses {
		delete(s.podStatuses, pod)
	}
	s.podStatusesLock.Unlock()
}

func TestKubernetes10182(t *testing.T) {
	s := &statusManager{
		podStatuses:      map[string]string{},
		podStatusChannel: make(chan struct{}),
		apiserver:        make(chan struct{}),
	}
	go s.syncLoop()
	s.SetPodStatus("a", "running") // received: the loop is now in syncBatch
	go s.SetPodStatus("b", "pending")
	waitHeld(&s.podStatusesLock) // the second setter holds the lock on its send
	close(s.apiserver)
}
