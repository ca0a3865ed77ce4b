// Package ownmain has its own TestMain in its internal test package, ending with
// os.Exit(m.Run()) after a teardown: goleak_magic wraps it.
package ownmain

// Publish sends v on a new channel that nobody reads.
func Publish(v int) {
	ch := make(chan int)
	go func() {
		ch <- v // BUG: nobody ever receives
	}()
}
