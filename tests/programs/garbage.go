package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Fprintln(os.Stderr, "SCHED garbage: not=a line")
	fmt.Fprint(os.Stderr, "SCHED 12ms: gomaxp")
	fmt.Fprintln(os.Stderr, "")
	fmt.Fprintln(os.Stderr, "\xff\xfe binary junk")
	time.Sleep(time.Hour)
}
