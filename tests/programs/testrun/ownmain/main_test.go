package ownmain

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	fmt.Println("setup")
	code := m.Run()
	fmt.Println("teardown")
	os.Exit(code)
}

func TestPublish(t *testing.T) { Publish(1) }

func TestNothing(t *testing.T) {}
