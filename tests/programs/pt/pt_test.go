package pt

import (
	"testing"
	"time"
)

func TestQuick(t *testing.T) {}

func TestSlow(t *testing.T) {
	for i := 0; i < 10; i++ {
		go func() { time.Sleep(time.Hour) }()
	}
	time.Sleep(2 * time.Second)
}
