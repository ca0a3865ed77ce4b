package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/exp/trace"
)

// Frame kinds of the output stream. A frame is the kind byte, the payload length as a
// little-endian uint32, then the payload.
const (
	frameHeader      = 'H' // JSON: format version and the column names of C and T
	frameTables      = 'J' // JSON: stacks and strings interned since the last J frame
	frameCreations   = 'C' // columns: uint32 row count, then one int64 array per column
	frameTransitions = 'T' // same layout as C
	frameProgress    = 'P' // JSON: events and bytes read so far
	frameEnd         = 'E' // JSON: the summary; always the last frame
)

// FormatVersion changes whenever the Python loader must change with it.
const FormatVersion = 1

var creationColumns = []string{"time", "goid", "new_goid", "stack_id"}

// site_id is the stack id of the goroutine's creation (-1: created before the trace).
var transitionColumns = []string{"time", "goid", "from_state", "to_state", "reason_id", "stack_id", "site_id"}

const (
	chunkRows     = 1 << 16
	progressEvery = 1 << 18
	newprocFunc   = "runtime.newproc"
)

// Pending rows are written out (and the output flushed) so a streamed trace's rows reach
// the notebook while it runs: whenever the parser asks for input (it reads a generation
// whole before it yields its events, so by then every row known is in, and on a live
// stream the read waits for the next generation, which the runtime cuts about every
// second), and within a long run of events once FlushInterval has passed since the last
// read or flush (checked every flushCheckEvents events: a clock read per event costs
// more). Measuring from the last flush alone would lock onto flushing a few events into
// each generation, splitting it for nothing; a rate limit at the reads, onto flushing
// at the start of each generation's bytes, a generation late.
const (
	FlushInterval    = 500 * time.Millisecond
	flushCheckEvents = 1 << 10
)

// Options of one conversion.
type Options struct {
	// AnchorNs is the wall clock (ns since the epoch) of the trace's first event, used
	// when the trace carries no clock snapshot (traces older than Go 1.25).
	AnchorNs int64
}

// Summary is the payload of the end frame.
type Summary struct {
	Events      int64  `json:"events"`
	Bytes       int64  `json:"bytes"`
	Generations int64  `json:"generations"`
	Creations   int64  `json:"creations"`
	Transitions int64  `json:"transitions"`
	Clock       string `json:"clock"` // "snapshot" (the trace's wall clock) or "anchor"
	// Flips counts the transitions that are not rows, per (site_id, from, to).
	Flips [][4]int64 `json:"flips"`
	Error string     `json:"error,omitempty"`
	// Unsupported is set when the trace's format is one the parser does not read.
	Unsupported bool `json:"unsupported,omitempty"`
}

type stackEntry struct {
	ID     int64    `json:"id"`
	Site   int      `json:"site"` // index in Frames of the go statement (-1: none)
	Frames [][3]any `json:"frames"`
}

type frameRow struct {
	Func, File string
	Line       uint64
}

type tablesPayload struct {
	Stacks  []stackEntry `json:"stacks,omitempty"`
	Strings [][2]any     `json:"strings,omitempty"`
}

type columns struct {
	kind byte
	cols [][]int64
}

func newColumns(kind byte, n int) *columns {
	c := &columns{kind: kind, cols: make([][]int64, n)}
	for i := range c.cols {
		c.cols[i] = make([]int64, 0, chunkRows)
	}
	return c
}

func (c *columns) add(vals ...int64) {
	for i, v := range vals {
		c.cols[i] = append(c.cols[i], v)
	}
}

func (c *columns) rows() int { return len(c.cols[0]) }

type flipKey struct {
	site     int64
	from, to trace.GoState
}

type converter struct {
	out   *bufio.Writer
	count *countingReader
	opts  Options
	sum   Summary

	// Stacks are interned by content: a Stack handle is only equal within a generation,
	// so the handle cache is dropped at every Sync to keep memory bounded.
	byHandle map[trace.Stack]int64
	byKey    map[string]int64
	strs     map[string]int64
	pending  tablesPayload

	sites goSites // live goroutine -> stack id of its creation
	flips map[flipKey]int64

	// the last stack interned: a go statement in a loop repeats it
	lastStack   trace.Stack
	lastStackID int64

	creations, transitions *columns

	haveClock   bool
	clockTrace  trace.Time
	clockWallNs int64

	busySince time.Time // the last flush (see FlushInterval; the last read is count.readAt)
	writeErr  error     // a failed write of the output, which ends the conversion
}

// countingReader counts the trace's bytes and, before each read, hands the parser's
// events so far to the converter with a flush mark (see FlushInterval). It runs on the
// parser's goroutine.
type countingReader struct {
	r      io.Reader
	n      atomic.Int64
	readAt atomic.Int64 // when the last read returned (unix ns): a live stream waits in it
	ps     *parse
}

func (c *countingReader) Read(p []byte) (int, error) {
	if !c.ps.send(true) {
		return 0, errStopped
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	c.readAt.Store(time.Now().UnixNano())
	return n, err
}

// Convert reads a Go execution trace from r and writes the frame stream to w. A trace
// that breaks part way keeps every event read before the break (the summary says where);
// the returned error is only about writing w.
func Convert(r io.Reader, w io.Writer, opts Options) (err error) {
	c := &converter{
		out:         bufio.NewWriterSize(w, 1<<20),
		opts:        opts,
		byHandle:    map[trace.Stack]int64{},
		byKey:       map[string]int64{},
		strs:        map[string]int64{},
		sites:       goSites{big: map[trace.GoID]int64{}},
		lastStackID: -1,
		flips:       map[flipKey]int64{},
		creations:   newColumns(frameCreations, len(creationColumns)),
		transitions: newColumns(frameTransitions, len(transitionColumns)),
		busySince:   time.Now(),
	}
	c.count = &countingReader{r: r}
	header, _ := json.Marshal(map[string]any{
		"format": FormatVersion,
		"columns": map[string][]string{
			"C": creationColumns,
			"T": transitionColumns,
		},
	})
	if err := c.frame(frameHeader, header); err != nil {
		return err
	}
	readErr := c.read()
	if c.writeErr != nil {
		return c.writeErr
	}
	if readErr != nil {
		c.sum.Error = readErr.Error()
		// x/exp/trace's words for a version it does not read ("unknown or unsupported
		// version go 1.N", "... trace version ...")
		c.sum.Unsupported = strings.Contains(c.sum.Error, "unsupported") && strings.Contains(c.sum.Error, "version")
	}
	return c.finish()
}

// The parser (x/exp/trace) runs on its own goroutine and hands events over in batches,
// so parsing and converting take a core each: the parser alone is most of the cost.
const batchEvents = 512

// errStopped ends the parser's read once the converter has stopped listening.
var errStopped = errors.New("the converter stopped")

// batch is a run of parsed events. flush: the parser is about to read more input, so
// every row known so far must be written out once these are converted. err ends the
// stream (io.EOF: a whole trace).
type batch struct {
	events []trace.Event
	flush  bool
	err    error
}

// parse is the parser's side of the hand-over.
type parse struct {
	out     chan batch
	stop    chan struct{}
	pending []trace.Event
}

// send hands over the pending events (and a flush mark); false once the converter
// stopped. (A read already waiting on a live input when the converter stops is left
// to end with that input; tracecv's process exits then anyway.)
func (p *parse) send(flush bool) bool {
	select {
	case <-p.stop: // checked first: with room in out as well, select would pick at random
		return false
	default:
	}
	if len(p.pending) == 0 && !flush {
		return true
	}
	select {
	case p.out <- batch{events: p.pending, flush: flush}:
		p.pending = make([]trace.Event, 0, batchEvents)
		return true
	case <-p.stop:
		return false
	}
}

// malformed turns a panic of the parser's (on either goroutine: events are read lazily)
// on malformed input into an error; call it deferred.
func malformed(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("the trace parser failed on malformed data: %v", r)
	}
}

func (p *parse) run(in *countingReader) {
	defer close(p.out)
	err := func() (err error) {
		defer malformed(&err)
		tr, err := trace.NewReader(in)
		if err != nil {
			return err
		}
		for {
			ev, err := tr.ReadEvent()
			if err != nil {
				return err
			}
			p.pending = append(p.pending, ev)
			if len(p.pending) == batchEvents && !p.send(false) {
				return errStopped
			}
		}
	}()
	if !p.send(false) {
		return
	}
	select {
	case p.out <- batch{err: err}:
	case <-p.stop:
	}
}

// read consumes the trace: the parser's events, converted in order.
func (c *converter) read() (err error) {
	ps := &parse{out: make(chan batch, 8), stop: make(chan struct{}), pending: make([]trace.Event, 0, batchEvents)}
	c.count.ps = ps
	defer close(ps.stop) // a parser still sending gives up
	go ps.run(c.count)
	defer malformed(&err)
	for b := range ps.out {
		for _, ev := range b.events {
			if err := c.event(ev); err != nil {
				return err
			}
		}
		if b.flush {
			if err := c.flushPending(); err != nil {
				return err
			}
		}
		if b.err != nil {
			if errors.Is(b.err, io.EOF) {
				return nil
			}
			return b.err
		}
	}
	return nil
}

// busyFor is the time since the last flush or the last read, whichever is later (the
// wait for a live stream's next generation is not busy time).
func (c *converter) busyFor() time.Duration {
	since := c.busySince
	if at := time.Unix(0, c.count.readAt.Load()); at.After(since) {
		since = at
	}
	return time.Since(since)
}

func (c *converter) event(ev trace.Event) error {
	c.sum.Events++
	if c.sum.Events%flushCheckEvents == 0 && c.busyFor() >= FlushInterval {
		if err := c.flushPending(); err != nil {
			return err
		}
	}
	if c.sum.Events%progressEvery == 0 {
		if err := c.progress(); err != nil {
			return err
		}
	}
	switch ev.Kind() {
	case trace.EventSync:
		c.sync(ev)
	case trace.EventStateTransition:
		st := ev.StateTransition()
		if st.Resource.Kind == trace.ResourceGoroutine {
			return c.goTransition(ev, st)
		}
	}
	return nil
}

func (c *converter) sync(ev trace.Event) {
	c.sum.Generations++
	clear(c.byHandle)
	c.lastStack, c.lastStackID = trace.NoStack, -1
	s := ev.Sync()
	if s.ClockSnapshot != nil {
		c.haveClock = true
		c.sum.Clock = "snapshot"
		c.clockTrace = s.ClockSnapshot.Trace
		c.clockWallNs = s.ClockSnapshot.Wall.UnixNano()
	} else if !c.haveClock {
		c.haveClock = true
		c.sum.Clock = "anchor"
		c.clockTrace = ev.Time()
		c.clockWallNs = c.opts.AnchorNs
	}
}

func (c *converter) wall(t trace.Time) int64 {
	return c.clockWallNs + int64(t-c.clockTrace)
}

// goTransition keeps a creation row for NotExist->Runnable; a transition row for a
// block (->Waiting), an unblock (Waiting->) and an end (->NotExist); and only a count of
// the rest (running<->runnable, syscalls, and the Undetermined->X that declares every
// existing goroutine again at each generation), which a busy program makes millions of;
// an X->X re-declaration, which changes nothing, is neither.
func (c *converter) goTransition(ev trace.Event, st trace.StateTransition) error {
	from, to := st.Goroutine()
	id := st.Resource.Goroutine()
	t := c.wall(ev.Time())
	switch {
	case from == trace.GoNotExist && to == trace.GoRunnable:
		sid := c.stack(ev.Stack())
		c.sites.set(id, sid)
		c.creations.add(t, int64(ev.Goroutine()), int64(id), sid)
		c.sum.Creations++
		if c.creations.rows() >= chunkRows {
			return c.flushRows()
		}
		return nil
	case from == to:
		// a goroutine still waiting, declared again at each generation: no change, and
		// with many parked goroutines most of the transitions (neither row nor flip)
		return nil
	case from == trace.GoUndetermined || (to != trace.GoWaiting && to != trace.GoNotExist && from != trace.GoWaiting):
		c.flips[flipKey{c.sites.get(id), from, to}]++
		return nil
	}
	site := c.sites.get(id)
	var stack int64 = -1
	switch {
	case to == trace.GoWaiting:
		stack = c.stack(st.Stack)
		if stack < 0 {
			stack = c.stack(ev.Stack())
		}
	case from == trace.GoWaiting && to != trace.GoNotExist:
		stack = c.stack(ev.Stack()) // who woke it
	}
	if to == trace.GoNotExist {
		c.sites.set(id, -1)
	}
	c.transitions.add(t, int64(id), int64(from), int64(to), c.str(st.Reason), stack, site)
	c.sum.Transitions++
	if c.transitions.rows() >= chunkRows {
		return c.flushRows()
	}
	return nil
}

// stack interns s; -1 for no stack.
func (c *converter) stack(s trace.Stack) int64 {
	if s == trace.NoStack {
		return -1
	}
	if s == c.lastStack {
		return c.lastStackID
	}
	id := c.intern(s)
	c.lastStack, c.lastStackID = s, id
	return id
}

func (c *converter) intern(s trace.Stack) int64 {
	if id, ok := c.byHandle[s]; ok {
		return id
	}
	var rows []frameRow
	var key strings.Builder
	for f := range s.Frames() {
		rows = append(rows, frameRow{f.Func, f.File, f.Line})
		key.WriteString(f.Func)
		key.WriteByte(0)
		key.WriteString(f.File)
		key.WriteByte(0)
		key.WriteString(strconv.FormatUint(f.Line, 10))
		key.WriteByte(0)
	}
	if len(rows) == 0 {
		c.byHandle[s] = -1
		return -1
	}
	id, ok := c.byKey[key.String()]
	if !ok {
		id = int64(len(c.byKey))
		c.byKey[key.String()] = id
		frames := make([][3]any, len(rows))
		for i, r := range rows {
			frames[i] = [3]any{r.Func, r.File, r.Line}
		}
		c.pending.Stacks = append(c.pending.Stacks, stackEntry{ID: id, Site: siteIndex(rows), Frames: frames})
	}
	c.byHandle[s] = id
	return id
}

// siteIndex is the frame of the go statement: the first frame above runtime.newproc
// (the rule goleak_magic.delve.tracer uses), else the innermost frame, since the
// tracer's creation stacks already start at the go statement.
func siteIndex(rows []frameRow) int {
	for i, r := range rows {
		if r.Func == newprocFunc {
			if i+1 < len(rows) {
				return i + 1
			}
			return -1
		}
	}
	return 0
}

func (c *converter) str(s string) int64 {
	if s == "" {
		return -1
	}
	if id, ok := c.strs[s]; ok {
		return id
	}
	id := int64(len(c.strs))
	c.strs[s] = id
	c.pending.Strings = append(c.pending.Strings, [2]any{id, s})
	return id
}

func (c *converter) frame(kind byte, payload []byte) error {
	var head [5]byte
	head[0] = kind
	binary.LittleEndian.PutUint32(head[1:], uint32(len(payload)))
	if _, err := c.out.Write(head[:]); err != nil {
		return err
	}
	_, err := c.out.Write(payload)
	return err
}

// flushPending writes out the pending rows, if any, and flushes the output.
func (c *converter) flushPending() error {
	if c.creations.rows()+c.transitions.rows() == 0 {
		return nil
	}
	if err := c.flushRows(); err != nil {
		c.writeErr = err
		return err
	}
	if err := c.out.Flush(); err != nil {
		c.writeErr = err
		return err
	}
	return nil
}

// flushRows writes the pending rows of both tables, transitions first: a loader that
// takes each frame as it comes then knows the goroutines that block in the agent's code
// before it sees their creations.
func (c *converter) flushRows() error {
	c.busySince = time.Now()
	if err := c.flush(c.transitions); err != nil {
		return err
	}
	return c.flush(c.creations)
}

// flush writes the interned tables the rows refer to, then the rows.
func (c *converter) flush(cols *columns) error {
	n := cols.rows()
	if n == 0 {
		return nil
	}
	if err := c.flushTables(); err != nil {
		return err
	}
	buf := make([]byte, 4+8*n*len(cols.cols))
	binary.LittleEndian.PutUint32(buf, uint32(n))
	off := 4
	for i, col := range cols.cols {
		for _, v := range col {
			binary.LittleEndian.PutUint64(buf[off:], uint64(v))
			off += 8
		}
		cols.cols[i] = col[:0]
	}
	return c.frame(cols.kind, buf)
}

func (c *converter) flushTables() error {
	if len(c.pending.Stacks) == 0 && len(c.pending.Strings) == 0 {
		return nil
	}
	payload, err := json.Marshal(c.pending)
	if err != nil {
		return err
	}
	c.pending = tablesPayload{}
	return c.frame(frameTables, payload)
}

func (c *converter) progress() error {
	payload, _ := json.Marshal(map[string]int64{"events": c.sum.Events, "bytes": c.count.n.Load()})
	if err := c.frame(frameProgress, payload); err != nil {
		return err
	}
	return c.out.Flush()
}

func (c *converter) finish() error {
	if err := c.flushRows(); err != nil {
		return err
	}
	if err := c.flushTables(); err != nil { // the stacks the flips name
		return err
	}
	c.sum.Bytes = c.count.n.Load()
	c.sum.Flips = [][4]int64{}
	for k, n := range c.flips {
		c.sum.Flips = append(c.sum.Flips, [4]int64{k.site, int64(k.from), int64(k.to), n})
	}
	payload, err := json.Marshal(c.sum)
	if err != nil {
		return err
	}
	if err := c.frame(frameEnd, payload); err != nil {
		return err
	}
	return c.out.Flush()
}

// goSites maps goroutine ids to their creation's stack id (-1: unknown). Go hands out
// ids densely, so a slice indexed by id is the fast path; a map takes the rare huge id.
type goSites struct {
	dense []int32 // stack id + 1; 0: unknown
	big   map[trace.GoID]int64
}

const denseGoIDs = 1 << 24

func (g *goSites) get(id trace.GoID) int64 {
	if id >= 0 && id < denseGoIDs {
		if int(id) < len(g.dense) {
			return int64(g.dense[id]) - 1
		}
		return -1
	}
	if v, ok := g.big[id]; ok {
		return v
	}
	return -1
}

func (g *goSites) set(id trace.GoID, stack int64) {
	if id < 0 || id >= denseGoIDs || stack >= 1<<31-1 {
		if stack < 0 {
			delete(g.big, id)
		} else {
			g.big[id] = stack
		}
		return
	}
	for int(id) >= len(g.dense) {
		g.dense = append(g.dense, make([]int32, len(g.dense)+1024)...)
	}
	g.dense[id] = int32(stack + 1)
}
