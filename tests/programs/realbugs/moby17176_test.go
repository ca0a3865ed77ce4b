package realbugs

// Moby #17176 (devicemapper DeviceSet; GoBench moby#17176). The deletion loop takes
// devices.Lock() and, when there are no deleted devices to clean up, returns without
// dropping it: every later device operation blocks on the lock. Shape: missing unlock on
// an early return. Upstream fix: unlock on that path too.

import (
	"sync"
	"testing"
)

type deviceSet struct {
	sync.Mutex
	nrDeletedDevices int
	active           map[string]bool
}

func (devices *deviceSet) cleanupDeletedDevices() {
	devices.Lock()
	if devices.nrDeletedDevices == 0 {
		return // BUG: returns with devices locked
	}
	devices.nrDeletedDevices = 0
	devices.Unlock()
}

func (devices *deviceSet) activate(name string) {
	devices.Lock() // BUG: blocks for ever: the cleanup kept the lock
	defer devices.Unlock()
	devices.active[name] = true
}

func TestMoby17176(t *testing.T) {
	devices := &deviceSet{active: map[string]bool{}}
	devices.cleanupDeletedDevices()
	go devices.activate("base")
}
