package realbugs

// gRPC-Go #1424 (DialContext with a balancer; GoBench grpc#1424). DialContext starts a
// goroutine that waits for the balancer's first address notification and then signals
// on an unbuffered done channel; on an early error (here: no address arrives in time)
// DialContext returns without draining that channel, and the goroutine blocks for ever
// on its send. Shape: the parent returns without draining the done channel. Upstream
// fix: drain it (or make it buffered) on every return path.

import (
	"context"
	"errors"
	"testing"
	"time"
)

type clientConn struct{ addrs []string }

func dialContext(ctx context.Context, notify <-chan []string) (*clientConn, error) {
	cc := &clientConn{}
	done := make(chan struct{})
	go func() {
		cc.addrs = <-notify
		done <- struct{}{} // BUG: unbuffered; dialContext may have returned already
	}()
	select {
	case <-done:
		return cc, nil
	case <-ctx.Done():
		return nil, ctx.Err() // returns without draining done
	}
}

func TestGRPC1424(t *testing.T) {
	notify := make(chan []string, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := dialContext(ctx, notify); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a timeout", err)
	}
	notify <- []string{"127.0.0.1:443"} // the balancer answers late
}
