package leaktests

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fetch asks a backend for a value and gives up when ctx expires. The answer comes back
// on an unbuffered channel: once fetch has returned on the timeout, nobody receives, and
// the goroutine that got the (late) answer stays blocked on its send for ever. The fix:
// make(chan int, 1).
func fetch(ctx context.Context, backend <-chan int) (int, error) {
	answer := make(chan int)
	go func() {
		v := <-backend
		answer <- v // BUG: unbuffered send; the caller stopped listening when ctx expired
	}()
	select {
	case v := <-answer:
		return v, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// TestLeakAfterReturn: the backend answers only after the caller timed out.
func TestLeakAfterReturn(t *testing.T) {
	backend := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, err := fetch(ctx, backend); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetch: got %v, want a timeout", err)
	}
	backend <- 42 // the late answer
}
