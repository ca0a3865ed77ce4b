package leaktests

import (
	"sync"
	"testing"
)

type account struct {
	mu      sync.Mutex
	balance int
}

// transfer locks the two accounts in argument order: a transfer a→b and one b→a that
// run together each hold one lock and wait for the other's. The fix: lock in one global
// order (e.g. by account id). ready makes the unlucky interleaving happen every run.
func transfer(from, to *account, amount int, ready *sync.WaitGroup) {
	from.mu.Lock()
	defer from.mu.Unlock()
	ready.Done()
	ready.Wait()
	to.mu.Lock() // BUG: lock order follows the arguments; the opposite transfer holds this one
	defer to.mu.Unlock()
	from.balance -= amount
	to.balance += amount
}

// TestLockOrderDeadlock: two transfers in opposite directions deadlock; the test does not
// wait for them (as a handler that fires transfers off would not).
func TestLockOrderDeadlock(t *testing.T) {
	a, b := &account{balance: 100}, &account{balance: 100}
	var ready sync.WaitGroup
	ready.Add(2)
	go transfer(a, b, 10, &ready)
	go transfer(b, a, 20, &ready)
}
