package leaktests

import "testing"

type worker struct {
	jobs chan int
	quit chan struct{}
	done chan struct{}
	sum  int
}

func startWorker() *worker {
	w := &worker{jobs: make(chan int), quit: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *worker) loop() {
	defer close(w.done)
	for {
		select {
		case j := <-w.jobs:
			w.sum += j
		case <-w.quit:
			return
		}
	}
}

func (w *worker) stop() {
	close(w.quit)
	<-w.done
}

// submit hands a job to the worker. It does not look at quit, so a job submitted after
// stop blocks its sender for ever. The fix: select on w.quit as well.
func (w *worker) submit(j int) {
	w.jobs <- j // BUG: nobody receives once the worker has stopped
}

// TestSendToStoppedWorker: a callback submits one more job after shutdown.
func TestSendToStoppedWorker(t *testing.T) {
	w := startWorker()
	w.submit(1)
	w.stop()
	go w.submit(2) // a late callback
	if w.sum != 1 {
		t.Fatalf("sum = %d, want 1", w.sum)
	}
}
