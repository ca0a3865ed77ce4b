package realbugs

// Moby #4951 (devicemapper; GoBench moby#4951). One path takes the global devices lock
// and then a device's own lock (baseInfo.lock); another takes the device's lock and then
// the global one. Run together, each holds one lock and waits for the other. Shape:
// AB-BA lock-order deadlock. Upstream fix: one lock order. The two channels below make
// the unlucky interleaving happen every run.

import (
	"sync"
	"testing"
)

type devInfo struct {
	lock sync.Mutex
	name string
}

type devices struct {
	sync.Mutex
	infos map[string]*devInfo
}

func (d *devices) deleteDevice(info *devInfo, holding, other chan struct{}) {
	d.Lock()
	defer d.Unlock()
	close(holding)
	<-other
	info.lock.Lock() // BUG: global then device lock; removeDevice takes them the other way
	delete(d.infos, info.name)
	info.lock.Unlock()
}

func (d *devices) removeDevice(info *devInfo, holding, other chan struct{}) {
	info.lock.Lock()
	defer info.lock.Unlock()
	close(holding)
	<-other
	d.Lock() // BUG: device then global lock; deleteDevice takes them the other way
	delete(d.infos, info.name)
	d.Unlock()
}

func TestMoby4951(t *testing.T) {
	info := &devInfo{name: "base"}
	d := &devices{infos: map[string]*devInfo{"base": info}}
	a, b := make(chan struct{}), make(chan struct{})
	go d.deleteDevice(info, a, b)
	go d.removeDevice(info, b, a)
}
