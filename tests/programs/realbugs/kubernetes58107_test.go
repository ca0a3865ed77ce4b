package realbugs

// Kubernetes #58107 (resource quota controller; GoBench kubernetes#58107). Workers take
// rq.workerLock.RLock() before pulling from a queue and wait on the queue's condition
// variable while still holding it; a periodic resync takes workerLock.Lock(). A worker
// waiting on an empty queue keeps the read lock, the resync blocks waiting for it, and
// since a waiting writer blocks new readers, workers of the other queue block on RLock.
// Shape: RWMutex read lock held across cond.Wait, with a writer waiting (RWR deadlock).
// Upstream fix: do not hold workerLock while pulling from a queue.

import (
	"runtime"
	"sync"
	"testing"
)

type workQueue struct {
	cond    *sync.Cond
	items   []int
	waiting int
}

func newWorkQueue(items ...int) *workQueue {
	return &workQueue{cond: sync.NewCond(&sync.Mutex{}), items: items}
}

func (q *workQueue) get() int {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	for len(q.items) == 0 {
		q.waiting++
		q.cond.Wait() // BUG: waits with rq.workerLock read-locked by the caller
		q.waiting--
	}
	it := q.items[0]
	q.items = q.items[1:]
	return it
}

func (q *workQueue) waiters() int {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	return q.waiting
}

type resourceQuota struct {
	workerLock sync.RWMutex
	processed  int
}

func (rq *resourceQuota) worker(q *workQueue) {
	for {
		rq.workerLock.RLock() // BUG: blocks behind the waiting resync
		it := q.get()
		rq.workerLock.RUnlock()
		_ = it
	}
}

func (rq *resourceQuota) resync() {
	rq.workerLock.Lock() // BUG: waits for the read lock held across cond.Wait
	rq.processed = 0
	rq.workerLock.Unlock()
}

func TestKubernetes58107(t *testing.T) {
	rq := &resourceQuota{}
	missing, unhandled := newWorkQueue(), newWorkQueue(1, 2)
	go rq.worker(missing)
	for missing.waiters() == 0 { // the worker is in cond.Wait, read lock held
		runtime.Gosched()
	}
	go rq.resync()
	go rq.worker(unhandled)
}
