package realbugs

// etcd #5509 (clientv3 remote client; GoBench etcd#5509). acquire() returns holding the
// client's read lock on success, and the caller releases it later; but on a failure path
// it returned with the read lock still held. Any later Close() then waits for ever for
// the write lock. Shape: read lock leaked on an error return (double locking).
// Upstream fix: RUnlock before returning the error.

import (
	"errors"
	"sync"
	"testing"
)

var errNoConn = errors.New("no connection")

type client struct {
	mu     sync.RWMutex
	conn   string
	closed bool
}

type remoteClient struct{ client *client }

// acquire returns with c.mu read-locked when it succeeds.
func (r *remoteClient) acquire() error {
	r.client.mu.RLock()
	if r.client.conn == "" {
		return errNoConn // BUG: returns with the read lock held
	}
	return nil
}

func (c *client) Close() {
	c.mu.Lock() // BUG: blocks for ever: a read lock was leaked
	c.closed = true
	c.mu.Unlock()
}

func TestEtcd5509(t *testing.T) {
	c := &client{} // the connection is down
	r := &remoteClient{client: c}
	if err := r.acquire(); err != errNoConn {
		t.Fatalf("got %v, want errNoConn", err)
	}
	go c.Close()
}
