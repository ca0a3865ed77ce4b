package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	line := strings.Repeat("x", 200)
	for i := 0; i < 200000; i++ {
		fmt.Println(i, line)
		fmt.Fprintln(os.Stderr, i, line)
	}
	fmt.Println("done")
}
