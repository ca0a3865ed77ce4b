// Package leaktests is a set of small tests, each shaped like a real blocking bug, for
// `%goleak tests example:leaktests` (and `%golaunch example:leaktests --test`).
//
// Every test passes: the bug shows only as goroutines left blocked after the test has
// returned, which is how most leaks are met. The line where a goroutine stays blocked
// (and the line that causes it, where that is elsewhere) is marked `// BUG:`.
// TestCleanShutdown is the control: it leaves nothing behind. Each test takes
// milliseconds, so `--count 100` stays quick.
package leaktests
