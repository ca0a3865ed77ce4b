package realbugs

// Hugo #5379 (page content initialisation; GoBench hugo#5379). Initialising a page's
// content takes contentInitMu, and on the way calls code that takes contentInitMu again:
// sync.Mutex is not reentrant, so the goroutine blocks on itself. Shape: the same mutex
// locked twice by one goroutine (double locking). Upstream fix: do not re-enter.

import (
	"sync"
	"testing"
)

type page struct {
	contentInitMu sync.Mutex
	contentInit   bool
	content       string
	shortcodes    []string
}

func (p *page) initContent() {
	p.contentInitMu.Lock()
	defer p.contentInitMu.Unlock()
	if !p.contentInit {
		p.content = p.renderShortcodes()
		p.contentInit = true
	}
}

func (p *page) renderShortcodes() string {
	p.contentInitMu.Lock() // BUG: already held by initContent (not reentrant)
	defer p.contentInitMu.Unlock()
	out := ""
	for _, s := range p.shortcodes {
		out += s
	}
	return out
}

func TestHugo5379(t *testing.T) {
	p := &page{shortcodes: []string{"{{< figure >}}"}}
	go p.initContent() // the site builds pages concurrently
}
