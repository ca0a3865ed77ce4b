// Package ownmainx has its own TestMain in its external test package, importing "os"
// under another name: goleak_magic wraps it.
package ownmainx

import "sync"

// Wait waits for a group nobody will ever mark done.
func Wait() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		wg.Wait() // BUG: no Done ever comes
	}()
}
