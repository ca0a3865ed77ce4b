// Package logfatal's TestMain ends the process with log.Fatal, which goleak_magic cannot
// wrap: the run has no final snapshot.
package logfatal
