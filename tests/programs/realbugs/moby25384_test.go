package realbugs

// Moby #25384 (plugin manager restore; GoBench moby#25384). The manager adds
// len(plugins) to a WaitGroup, then in the loop starts one goroutine per plugin and calls
// Wait inside the loop: with more than one plugin, the first Wait needs n Done calls but
// only one goroutine has been started, so it waits for ever. Shape: misuse of
// sync.WaitGroup (Wait inside the loop). Upstream fix: Wait after the loop.

import (
	"sync"
	"testing"
)

type plugin struct{ enabled bool }

type pluginManager struct{ plugins []*plugin }

func (pm *pluginManager) restore() {
	var group sync.WaitGroup
	group.Add(len(pm.plugins))
	for _, p := range pm.plugins {
		go func(p *plugin) {
			defer group.Done()
			p.enabled = true
		}(p)
		group.Wait() // BUG: inside the loop; needs all n Done calls after one goroutine
	}
}

func TestMoby25384(t *testing.T) {
	pm := &pluginManager{plugins: []*plugin{{}, {}, {}}}
	go pm.restore() // the daemon restores plugins in the background
}
