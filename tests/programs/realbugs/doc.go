// Package realbugs holds tests written from published descriptions of real blocking bugs
// in well-known Go projects (the GoBench suite, CGO 2021, and "Understanding Real-World
// Concurrency Bugs in Go", ASPLOS 2019, describe them with their upstream pull-request
// numbers). The code is ours, written from the description, much reduced; each file
// names the project, the bug's id and its shape, and marks with `// BUG:` the line where
// a goroutine stays blocked (and the line that causes it, where that is elsewhere).
//
// Each test forces the unlucky interleaving (with channels, never with sleeps), so the
// bug manifests in every run; the test itself passes and returns, and the bug shows as
// goroutines left blocked in the bug's own code.
package realbugs

import (
	"runtime"
	"sync"
)

// held reports whether mu is locked by someone (it leaves it as it was): the tests use
// it to wait until a goroutine has taken a lock before starting the next step.
func held(mu *sync.Mutex) bool {
	if mu.TryLock() {
		mu.Unlock()
		return false
	}
	return true
}

// waitHeld waits until mu is locked by someone else.
func waitHeld(mu *sync.Mutex) {
	for !held(mu) {
		runtime.Gosched()
	}
}
