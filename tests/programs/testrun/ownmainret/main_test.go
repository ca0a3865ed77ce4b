package ownmainret

import (
	"fmt"
	"testing"
)

func TestMain(m *testing.M) {
	m.Run()
	fmt.Println("teardown")
}

func TestStuck(t *testing.T) { Stuck() }
