// Added with goleak_magic_testmain.go, as a _linux file: a test binary that goleak_magic
// starts (GOLEAK_MAGIC_PARENT names its pid) dies with it. goleak_magic starts many test
// processes in a row; setting the parent-death signal here rather than between fork and
// exec in Python lets it start them without a fork of its own (10x faster to spawn).

package main

import (
	goleakMagicTestOS "os"
	goleakMagicTestStrconv "strconv"
	goleakMagicTestSyscall "syscall"
)

func init() {
	parent := goleakMagicTestOS.Getenv("GOLEAK_MAGIC_PARENT")
	if parent == "" {
		return
	}
	goleakMagicTestOS.Unsetenv("GOLEAK_MAGIC_PARENT")
	goleakMagicTestSyscall.RawSyscall(goleakMagicTestSyscall.SYS_PRCTL,
		goleakMagicTestSyscall.PR_SET_PDEATHSIG, uintptr(goleakMagicTestSyscall.SIGKILL), 0)
	if goleakMagicTestStrconv.Itoa(goleakMagicTestOS.Getppid()) != parent {
		goleakMagicTestOS.Exit(1) // the parent died before the signal was set
	}
}
