package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Println("arg=" + os.Args[1], "FOO=" + os.Getenv("FOO"), "GODEBUG=" + os.Getenv("GODEBUG"))
	time.Sleep(time.Hour)
}
