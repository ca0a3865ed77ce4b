// Package ownmainret has its own TestMain that returns instead of calling os.Exit (Go
// 1.15+ exits with m.Run's code then): goleak_magic takes its snapshot on the return.
package ownmainret

import "sync"

// Stuck locks a mutex twice.
func Stuck() {
	var mu sync.Mutex
	mu.Lock()
	go func() {
		mu.Lock() // BUG: never unlocked
	}()
}
