package logfatal

import (
	"log"
	"testing"
)

func TestMain(m *testing.M) {
	if code := m.Run(); code != 0 {
		log.Fatalf("tests failed: %d", code)
	}
	log.Fatal("teardown failed")
}

func TestPass(t *testing.T) {}
