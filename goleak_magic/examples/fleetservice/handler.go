package main

import (
	"math/rand"
	"time"
)

// handle answers one request: the backend call runs in its own goroutine and the
// handler waits for it or for its deadline. When the deadline wins nobody receives
// from the unbuffered channel, so the backend goroutine blocks on its send forever:
// the leak this service plants (the GC can prove it: the channel is unreachable).
func handle(slow bool, deadline time.Duration) int {
	result := make(chan int)
	go func() {
		result <- backend(slow, deadline) // leaks when the deadline below wins
	}()
	select {
	case n := <-result:
		return n
	case <-time.After(deadline):
		return -1
	}
}

func backend(slow bool, deadline time.Duration) int {
	if slow {
		time.Sleep(2 * deadline)
	}
	return rand.Intn(100)
}
