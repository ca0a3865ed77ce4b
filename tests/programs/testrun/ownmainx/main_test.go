package ownmainx_test

import (
	"fmt"
	stdos "os"
	"testing"

	"testrun/ownmainx"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fmt.Println("teardown")
	stdos.Exit(code)
}

func TestWait(t *testing.T) { ownmainx.Wait() }
