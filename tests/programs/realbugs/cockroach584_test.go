package realbugs

// CockroachDB #584 (gossip manage loop; GoBench cockroach#584). The gossip manager locks
// its mutex at the top of each loop iteration (it cannot use defer inside the loop) and,
// on shutdown, breaks out of the loop without unlocking. Anything that needs the gossip
// lock afterwards blocks for ever. Shape: missing unlock before a break. Upstream fix:
// unlock before breaking.

import (
	"sync"
	"testing"
)

type gossip struct {
	mu      sync.Mutex
	closed  chan struct{}
	infos   int
	stopped chan struct{}
}

func (g *gossip) manage() {
	defer close(g.stopped)
	for {
		g.mu.Lock()
		select {
		case <-g.closed:
		default:
			g.infos++
			g.mu.Unlock()
			continue
		}
		break // BUG: leaves the loop with g.mu locked
	}
}

func (g *gossip) addInfo() {
	g.mu.Lock() // BUG: blocks for ever: manage() kept the lock
	g.infos++
	g.mu.Unlock()
}

func TestCockroach584(t *testing.T) {
	g := &gossip{closed: make(chan struct{}), stopped: make(chan struct{})}
	go g.manage()
	close(g.closed) // shutdown
	<-g.stopped
	go g.addInfo()
}
