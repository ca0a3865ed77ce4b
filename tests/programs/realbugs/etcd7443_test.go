package realbugs

// etcd #7443 (clientv3 simpleBalancer; GoBench etcd#7443). Up() holds the balancer's
// mutex while it sends on notifyCh; the goroutine that reads notifyCh is the watcher,
// and on teardown it calls the balancer's Close(), which needs the same mutex. A send
// under the lock while the watcher is tearing down: each waits for the other. Shape: a
// mutex held across a channel send, the receiver blocked on that mutex. Upstream fix:
// send outside the lock.

import (
	"sync"
	"testing"
)

type simpleBalancer struct {
	mu       sync.Mutex
	notifyCh chan []string
	closed   bool
	addrs    []string
}

func (b *simpleBalancer) Up(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.addrs = append(b.addrs, addr)
	b.notifyCh <- b.addrs // BUG: sends with b.mu held; the receiver may be in Close
}

func (b *simpleBalancer) Close() {
	b.mu.Lock() // BUG: Up holds it, blocked on a send only we would receive
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.notifyCh)
	}
}

// lbWatcher reads address updates until stop; then (saying so on stopping) it tears the
// connection down, which waits for teardown, and closes the balancer.
func lbWatcher(b *simpleBalancer, stop, stopping, teardown chan struct{}) {
	for {
		select {
		case <-b.notifyCh:
		case <-stop:
			close(stopping)
			<-teardown
			b.Close()
			return
		}
	}
}

func TestEtcd7443(t *testing.T) {
	b := &simpleBalancer{notifyCh: make(chan []string)}
	stop, stopping, teardown := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go lbWatcher(b, stop, stopping, teardown)
	close(stop)
	<-stopping // the watcher is tearing down: it no longer receives
	go b.Up("10.0.0.1:2379")
	waitHeld(&b.mu) // Up holds the lock on its send
	close(teardown)
}
