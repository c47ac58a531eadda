package export

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"ferry/internal/jira"
)

// Reading issues with their fields is the cheapest read in Jira's points
// model (one point per issue and one per page of 100; listing ids first and
// hydrating them costs twice that), but a search/jql chain is sequential:
// each page needs the previous page's nextPageToken. So a walk ordered by
// created or updated is cut into slices of that field's range, each read on
// a chain of its own, all at once, and written in order:
//
//   - the plan counts the walk once (search/approximate-count: one point
//     per call, no objects) and cuts the range between its first and last
//     value into pieces of equal length, counting each piece; a piece is
//     then cut into leaves of about leafRows issues by length alone. The
//     count is also $count, so $count costs nothing more.
//   - every leaf is one JQL (the query AND field >= "…" AND field < "…",
//     the same ORDER BY), read page after page; the outermost leaves are
//     open-ended, so their union is exactly the query. Ties of the first
//     sort key fall in one leaf, whose own ORDER BY orders them as the
//     whole query would.
//   - the plan travels in the $skiptoken with the position (leaf, Jira's
//     nextPageToken, offset), so a walk is planned once; an OData page ends
//     where a piece ends, so a full OData walk makes the same calls as the
//     CSV stream.
//
// Bounds are whole minutes, written in the searching user's time zone as JQL
// reads them, and never within two hours of a daylight-saving change, where
// a local time can name two instants.

const (
	// leafRows is the issues per leaf: twenty pages. A leaf's last page is
	// partly empty, and a page is a call against Jira's burst limit, so
	// short leaves waste calls; long ones need more read-ahead (the rows
	// other chains read while the leaf being written takes its twenty
	// round trips).
	leafRows   = 2_000
	minPieces  = 16     // pieces counted per walk (one point each)
	pieceRows  = 10_000 // more pieces for bigger walks, so that a page can hold whole pieces
	maxPieces  = 512
	bufferRows = SharedReadAhead // rows read ahead of the one being written, per walk
	// The pieces that end a page (of defaultPageSize rows) within its last
	// fineRows rows are cut into leaves of a page each: the last chains of a
	// page then finish within one round trip of each other, instead of the
	// page waiting for a twenty-page leaf started last.
	fineRows = 1_500
	fineLeaf = 80 // issues per leaf at a page's end: one page, mostly
	// minSpan is the fewest issues per leaf a walk is cut into for
	// parallelism's sake (leafSpan): two pages.
	minSpan = 2 * jira.MaxPage
)

// leafSpan is the issues per leaf of a walk of total issues that may have
// parallel calls in flight (the tenant's Parallelism). A leaf is a chain of
// dependent pages, one round trip each, so leaves of leafRows would leave a
// walk of 10,000 issues five chains of twenty round trips, however many
// calls the burst rate allows. And only the leaves within the read-ahead
// (bufferRows, counted from the leaf being written) read at once: with
// leaves of leafRows that is eight chains. So a walk has at least parallel
// leaves, and the read-ahead holds about twice parallel of them; but a leaf
// holds at least minSpan issues, since its last page is partly empty and
// every page counts against the burst rate.
func leafSpan(total, parallel int) int {
	parallel = max(parallel, 1)
	return max(min(leafRows, total/parallel, bufferRows/(2*parallel)), minSpan)
}

// Plan is how a walk is cut. Pieces are K equal lengths of [Lo, Hi)
// (minutes since the Unix epoch); Counts are Jira's counts per piece.
type Plan struct {
	Field  string `json:"f,omitempty"` // created | updated; "" = one chain, not cut
	Desc   bool   `json:"d,omitempty"`
	Lo     int64  `json:"l,omitempty"`
	Hi     int64  `json:"h,omitempty"`
	Counts []int  `json:"c,omitempty"`
	Zone   string `json:"z,omitempty"` // the zone the bounds are written in
	Total  int    `json:"n"`           // Jira's count of the whole walk (approximate-count)
	Leaf   int    `json:"r,omitempty"` // issues per leaf; 0 = leafRows
	// Span, when set, is the issues per leaf chosen for this walk's size
	// and parallelism (leafSpan); a page's last pieces are still cut into
	// leaves of a page.
	Span int `json:"s,omitempty"`
}

func (p *Plan) leafRows() int {
	if p.Leaf > 0 {
		return p.Leaf
	}
	return leafRows
}

// span is the issues per leaf outside a page's last pieces.
func (p *Plan) span() int {
	if p.Span > 0 {
		return p.Span
	}
	return p.leafRows()
}

// fewestPages is how many leaves of equal length to cut a piece of c
// issues into, at least lo and at most twice that: the number that reads it
// in the fewest pages, each leaf's last page partly empty. Leaves of equal
// length hold about equal counts, give or take a few per cent (pageSlack):
// a leaf expected to fill its last page exactly may need one more.
func fewestPages(c, lo int) int {
	const pageSlack = 1.04
	best, bestPages := lo, math.MaxInt
	for m := lo; m <= 2*lo; m++ {
		pages := m * int(math.Ceil(float64(c)*pageSlack/float64(m)/jira.MaxPage))
		if pages < bestPages {
			best, bestPages = m, pages
		}
	}
	return best
}

// leaf is one chain of a plan: a JQL and where it sits.
type leaf struct {
	piece  int
	lo, hi int64 // minutes; math.MinInt64 / math.MaxInt64: open
	rows   int   // expected issues (the piece's count shared by length)
}

func (p *Plan) pieces() int { return len(p.Counts) }

// cut is the k-th of n equal cuts of [Lo, Hi), moved off daylight-saving
// changes.
func (p *Plan) cut(k, n int64) int64 {
	return safeMinute(p.Lo+(p.Hi-p.Lo)*k/n, p.zone())
}

// pieceBounds is piece k's range, open at the ends of the walk.
func (p *Plan) pieceBounds(k int) (lo, hi int64) {
	n := int64(p.pieces())
	lo, hi = p.cut(int64(k), n), p.cut(int64(k+1), n)
	if k == 0 {
		lo = math.MinInt64
	}
	if k == p.pieces()-1 {
		hi = math.MaxInt64
	}
	return lo, hi
}

// leaves lists the plan's chains in emission order. A plan without a
// field is one chain over the whole query.
func (p *Plan) leaves() []leaf {
	if p.Field == "" {
		return []leaf{{lo: math.MinInt64, hi: math.MaxInt64, rows: p.Total}}
	}
	var out []leaf
	n := int64(p.pieces())
	fine := p.finePieces()
	for i := range p.pieces() {
		k := i
		if p.Desc {
			k = p.pieces() - 1 - i
		}
		c := p.Counts[k]
		if c == 0 {
			continue // nothing there: no call at all
		}
		// Leaves are equal lengths of the piece's share of [Lo, Hi), in
		// units of 1/(n·m) of it, cut by the same rule as the pieces.
		size := p.span()
		if fine[k] {
			size = min(max(p.leafRows()*fineLeaf/leafRows, 1), size)
		}
		m := int64(max((c+size/2)/size, 1)) // leaves of size/1.5 to size·1.5: fewer part-empty last pages
		if p.Span > 0 && !fine[k] {
			m = int64(fewestPages(c, max(c/size, 1)))
		}
		if width := (p.Hi - p.Lo) / n; m > width {
			m = max(width, 1)
		}
		var piece []leaf
		for j := range m {
			l := leaf{piece: k, lo: p.cut(int64(k)*m+j, n*m), hi: p.cut(int64(k)*m+j+1, n*m), rows: c / int(m)}
			if j == 0 {
				l.lo, _ = p.pieceBounds(k)
			}
			if j == m-1 {
				_, l.hi = p.pieceBounds(k)
			}
			piece = append(piece, l)
		}
		if p.Desc {
			for a, b := 0, len(piece)-1; a < b; a, b = a+1, b-1 {
				piece[a], piece[b] = piece[b], piece[a]
			}
		}
		out = append(out, piece...)
	}
	return out
}

// finePieces marks the pieces within the last fineRows rows of a page: pages
// of defaultPageSize rows made of whole pieces, as segmentEnd makes them.
func (p *Plan) finePieces() map[int]bool {
	fine := map[int]bool{}
	fineAt := fineRows * p.leafRows() / leafRows
	var seg []int // the current page's pieces, in emission order
	rows := 0
	flush := func() {
		after := 0
		for j := len(seg) - 1; j >= 0; j-- {
			if after < fineAt {
				fine[seg[j]] = true
			}
			after += p.Counts[seg[j]]
		}
		seg, rows = nil, 0
	}
	for i := range p.pieces() {
		k := i
		if p.Desc {
			k = p.pieces() - 1 - i
		}
		c := p.Counts[k]
		if c == 0 {
			continue
		}
		if rows > 0 && rows+c > defaultPageSize {
			flush()
		}
		seg = append(seg, k)
		rows += c
	}
	flush()
	return fine
}

// jql is the leaf's query: where AND its bounds, ordered by order.
func (p *Plan) jql(l leaf, where, order string) string {
	var conds []string
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if p.Field != "" {
		zone := p.zone()
		if l.lo != math.MinInt64 {
			conds = append(conds, fmt.Sprintf(`%s >= "%s"`, p.Field, jqlMinute(l.lo, zone)))
		}
		if l.hi != math.MaxInt64 {
			conds = append(conds, fmt.Sprintf(`%s < "%s"`, p.Field, jqlMinute(l.hi, zone)))
		}
	}
	q := strings.Join(conds, " AND ")
	if order != "" {
		q += " ORDER BY " + order
	}
	return strings.TrimSpace(q)
}

func (p *Plan) zone() *time.Location {
	if p.Zone != "" {
		if loc, err := time.LoadLocation(p.Zone); err == nil {
			return loc
		}
	}
	return time.UTC
}

// jqlMinute writes minute m as JQL reads a date-time in zone.
func jqlMinute(m int64, zone *time.Location) string {
	return time.Unix(m*60, 0).In(zone).Format("2006-01-02 15:04")
}

// safeMinute moves a bound off daylight-saving changes: a local time near
// one may name two instants (or none), and JQL would read it as another. A
// bound with a change less than two hours away moves to two hours after the
// change. The move is monotone (bounds keep their order; some may become
// equal, leaving an empty leaf) and depends on the bound alone, so a bound
// shared by two leaves is one string in both and leaves never overlap.
func safeMinute(m int64, zone *time.Location) int64 {
	if zone == nil || zone == time.UTC {
		return m
	}
	t := time.Unix(m*60, 0)
	for i := 0; i < 4; i++ {
		_, end := t.Add(-2 * time.Hour).In(zone).ZoneBounds()
		if end.IsZero() || end.After(t.Add(2*time.Hour)) {
			return t.Unix() / 60
		}
		t = end.Add(2 * time.Hour)
	}
	return t.Unix() / 60
}

// sortKey is the first key of a JQL ORDER BY clause: the field a walk can
// be cut by (created or updated), and its direction.
func sortKey(order string) (field string, desc, ok bool) {
	first, _, _ := strings.Cut(order, ",")
	parts := strings.Fields(strings.ToLower(first))
	if len(parts) == 0 || len(parts) > 2 {
		return "", false, false
	}
	switch parts[0] {
	case "created", "createddate":
		field = "created"
	case "updated", "updateddate":
		field = "updated"
	default:
		return "", false, false
	}
	if len(parts) == 2 {
		switch parts[1] {
		case "desc":
			desc = true
		case "asc":
		default:
			return "", false, false
		}
	}
	return field, desc, true
}

// planWalk cuts where (with order) into slices. Round one, at once: the
// count, and the first and last value of the field; round two, at once:
// each piece's count. A small walk is one chain.
func planWalk(ctx context.Context, c *jira.Client, where, order string, zone *time.Location, leaf int) (*Plan, error) {
	field, desc, ok := sortKey(order)
	whereJQL := where
	p := &Plan{Field: field, Desc: desc, Zone: zone.String(), Leaf: leaf}
	if zone == time.UTC || zone == nil {
		p.Zone = ""
	}
	var first, last time.Time
	err := parallel(ctx, 3, func(ctx context.Context, i int) error {
		switch i {
		case 0:
			n, err := c.ApproximateCount(ctx, boundedJQL(whereJQL))
			p.Total = n
			return err
		default:
			if !ok {
				return nil
			}
			dir := "ASC"
			if i == 2 {
				dir = "DESC"
			}
			q := joinWhere(whereJQL, "") + " ORDER BY " + field + " " + dir
			pg, err := c.Search(ctx, strings.TrimSpace(q), []string{field}, "", 1)
			if err != nil || len(pg.Issues) == 0 {
				return err
			}
			t, err := issueTime(pg.Issues[0], field)
			if err != nil {
				return err
			}
			if i == 1 {
				first = t
			} else {
				last = t
			}
			return nil
		}
	})
	if err != nil {
		return nil, err
	}
	// Leaves sized for the tenant's parallelism (tests that set leaf keep
	// theirs), known after round one: its answers told the burst rate and
	// the round trip.
	if ok && leaf == 0 && c.Limits != nil {
		if s := leafSpan(p.Total, c.Limits.Parallelism()); s < leafRows {
			p.Span = s
		}
	}
	if !ok || p.Total <= 2*p.span() || first.IsZero() || last.IsZero() {
		p.Field, p.Desc, p.Zone, p.Leaf, p.Span = "", false, "", 0, 0
		return p, nil
	}
	p.Lo = first.Unix()/60 - 1
	p.Hi = last.Unix()/60 + 2
	k := min(max(minPieces, (p.Total+pieceRows-1)/pieceRows), maxPieces, (p.Total+p.span()-1)/p.span())
	k = min(k, int(p.Hi-p.Lo))
	p.Counts = make([]int, k)
	err = parallel(ctx, k-1, func(ctx context.Context, i int) error {
		n, err := c.ApproximateCount(ctx, boundedJQL(p.jql(leafOf(p, i), whereJQL, "")))
		p.Counts[i] = n
		return err
	})
	if err != nil {
		return nil, err
	}
	rest := p.Total
	for _, n := range p.Counts[:k-1] {
		rest -= n
	}
	p.Counts[k-1] = max(rest, 0)
	return p, nil
}

// leafOf is piece k as one leaf (for counting it).
func leafOf(p *Plan, k int) leaf {
	lo, hi := p.pieceBounds(k)
	return leaf{piece: k, lo: lo, hi: hi}
}

// boundedJQL: approximate-count refuses a query without a restriction.
func boundedJQL(where string) string {
	if strings.TrimSpace(where) == "" {
		return `created >= "1970-01-01"`
	}
	return where
}

func joinWhere(a, b string) string {
	switch {
	case a != "" && b != "":
		return "(" + a + ") AND (" + b + ")"
	case a != "":
		return a
	}
	return b
}

func issueTime(is jira.Issue, field string) (time.Time, error) {
	v, ok := is.Fields[field]
	if !ok {
		return time.Time{}, fmt.Errorf("jira: the answer lacks %s", field)
	}
	s, ok := jsonString(v)
	if !ok {
		return time.Time{}, fmt.Errorf("jira: %s is not a date-time", field)
	}
	return ParseJiraTime(s)
}

// parallel runs fn(0..n-1) at once and returns the first error.
func parallel(ctx context.Context, n int, fn func(context.Context, int) error) error {
	if n <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- fn(ctx, i) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// sliceRead is one run over a plan's leaves.
type sliceRead struct {
	c      *jira.Client
	plan   *Plan
	leaves []leaf
	where  string
	order  string
	fields []string
	cols   []Column
	conc   func() int // chains at once (the tenant's concurrency)

	mu       sync.Mutex
	wake     chan struct{}
	buffered int // rows fetched, not yet written
	head     int // the leaf being written

	gate  gate       // the walk's calls in flight, earliest leaf first
	ahead *ReadAhead // shared with other walks; nil: none
}

// gate lets at most limit() of a walk's calls be in flight and, when more
// wait, lets the one for the earliest leaf go first: the leaf being written
// never queues behind leaves read ahead (which would stall the whole walk).
type gate struct {
	mu      sync.Mutex
	inUse   int
	waiting []gateWaiter
}

type gateWaiter struct {
	leaf int
	ch   chan struct{}
}

func (g *gate) enter(ctx context.Context, leaf int, limit func() int) bool {
	g.mu.Lock()
	if g.inUse < limit() && (len(g.waiting) == 0 || g.waiting[0].leaf > leaf) {
		g.inUse++
		g.mu.Unlock()
		return true
	}
	w := gateWaiter{leaf, make(chan struct{})}
	i, _ := slices.BinarySearchFunc(g.waiting, leaf, func(x gateWaiter, l int) int { return x.leaf - l })
	for i < len(g.waiting) && g.waiting[i].leaf == leaf {
		i++
	}
	g.waiting = slices.Insert(g.waiting, i, w)
	g.mu.Unlock()
	select {
	case <-w.ch:
		return true
	case <-ctx.Done():
		g.mu.Lock()
		defer g.mu.Unlock()
		for j, x := range g.waiting {
			if x.ch == w.ch {
				g.waiting = slices.Delete(g.waiting, j, j+1)
				return false
			}
		}
		// Let in just as ctx ended: pass the place on.
		g.inUse--
		g.grantLocked(limit)
		return false
	}
}

func (g *gate) leave(limit func() int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inUse--
	g.grantLocked(limit)
}

func (g *gate) grantLocked(limit func() int) {
	for len(g.waiting) > 0 && g.inUse < limit() {
		w := g.waiting[0]
		g.waiting = g.waiting[1:]
		g.inUse++
		close(w.ch)
	}
}

// ReadAhead bounds the rows read ahead of the ones being written, across
// every walk that shares it (a server's feeds share one): memory stays flat
// however many feeds run at once, while a lone walk may read ahead as far
// as it needs. The leaf being written never waits for it.
type ReadAhead struct {
	mu    sync.Mutex
	limit int
	used  int
	wake  chan struct{}
}

// NewReadAhead returns a budget of rows.
func NewReadAhead(rows int) *ReadAhead {
	return &ReadAhead{limit: rows, wake: make(chan struct{})}
}

// take reserves n rows if they fit.
func (r *ReadAhead) take(n int) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.used > 0 && r.used+n > r.limit {
		return false
	}
	r.used += n
	return true
}

// give returns n rows.
func (r *ReadAhead) give(n int) {
	if r == nil || n == 0 {
		return
	}
	r.mu.Lock()
	r.used -= n
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *ReadAhead) changed() <-chan struct{} {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wake
}

type slicePage struct {
	budget int // rows of the shared ReadAhead it holds
	rows   [][]any
	token  string // the token that fetched it ("" = the leaf's first page)
	next   string // the next page's token ("" = none)
}

type chainOut struct {
	pages chan slicePage
	err   error // set before pages is closed
}

// run reads leaves [from.Slot, end) starting at from's page and offset, and
// emits their rows in order with their positions, until emit returns an
// error or, when rowCap ≥ 0, rowCap rows were emitted (then the pages are
// sized to end exactly there). It returns the position after the last row.
func (s *sliceRead) run(ctx context.Context, from Cursor, end int, rowCap int, emit func(vals []any, at, after Cursor) error) (Cursor, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.wake = make(chan struct{})
	start := from.Slot
	end = min(end, len(s.leaves))
	// A leaf's output exists only while its chain runs or its pages wait:
	// a walk of a million issues has thousands of leaves.
	outs := make([]*chainOut, end)
	capped := rowCap >= 0
	left := rowCap // rows still to fetch (capped runs are one chain at a time)
	var leftMu sync.Mutex
	// want says how many rows the next page may hold; got counts what a
	// page brought, so that a capped run never reads past its cap.
	want := func() int {
		if !capped {
			return jira.MaxPage
		}
		leftMu.Lock()
		defer leftMu.Unlock()
		return min(jira.MaxPage, left)
	}
	got := func(n int) {
		if capped {
			leftMu.Lock()
			left -= n
			leftMu.Unlock()
		}
	}
	// The dispatcher starts chains in order: as many at once as the tenant's
	// concurrency allows, and only while the read-ahead has room.
	go func() {
		active := 0
		done := make(chan struct{}, end)
		for i := start; i < end; i++ {
			for {
				if ctx.Err() != nil {
					return
				}
				limit := max(s.conc(), 1)
				if capped {
					limit = 1
				}
				if active < limit && s.roomFor(i) {
					break
				}
				s.mu.Lock()
				ch := s.wake
				s.mu.Unlock()
				select {
				case <-done:
					active--
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
			active++
			token, skip := "", 0
			if i == start {
				token, skip = from.PageToken, from.Offset
			}
			// Room for a whole leaf: a chain read ahead must not wait for the
			// writer before its leaf is read (the budgets bound the memory).
			out := &chainOut{pages: make(chan slicePage, s.plan.leafRows()/jira.MaxPage+2)}
			s.mu.Lock()
			outs[i] = out
			s.broadcastLocked()
			s.mu.Unlock()
			go func(i int, token string, skip int) {
				defer func() { done <- struct{}{} }()
				s.chain(ctx, i, token, skip, want, got, out)
			}(i, token, skip)
		}
	}()
	pos := from
	emitted := 0
	for i := start; i < end; i++ {
		s.setHead(i)
		var out *chainOut
		for {
			s.mu.Lock()
			out, outs[i] = outs[i], nil
			ch := s.wake
			s.mu.Unlock()
			if out != nil {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return pos, ctx.Err()
			}
		}
		for pg := range out.pages {
			skip := 0
			if i == start && pg.token == from.PageToken {
				skip = from.Offset
			}
			for k := skip; k < len(pg.rows); k++ {
				at := Cursor{Mode: modeSlices, Plan: s.plan, Slot: i, PageToken: pg.token, Offset: k}
				after := Cursor{Mode: modeSlices, Plan: s.plan, Slot: i, PageToken: pg.token, Offset: k + 1}
				if k+1 == len(pg.rows) {
					after = s.afterPage(i, pg.next)
				}
				if err := emit(pg.rows[k], at, after); err != nil {
					return at, err
				}
				pos = after
				emitted++
				if capped && emitted >= rowCap {
					cancel()
					return pos, nil
				}
			}
			s.consumed(len(pg.rows))
			s.ahead.give(pg.budget)
		}
		if out.err != nil {
			return pos, out.err
		}
		pos = s.afterPage(i, "")
	}
	if err := ctx.Err(); err != nil {
		return pos, err
	}
	return pos, nil
}

// afterPage is the position after a leaf's page: the next page of the same
// leaf, the next leaf, or the end.
func (s *sliceRead) afterPage(i int, next string) Cursor {
	if next != "" {
		return Cursor{Mode: modeSlices, Plan: s.plan, Slot: i, PageToken: next}
	}
	if i+1 >= len(s.leaves) {
		return Cursor{Done: true}
	}
	return Cursor{Mode: modeSlices, Plan: s.plan, Slot: i + 1}
}

// chain reads one leaf page by page.
func (s *sliceRead) chain(ctx context.Context, i int, token string, skip int, want func() int, got func(int), out *chainOut) {
	defer close(out.pages)
	jql := s.plan.jql(s.leaves[i], s.where, s.order)
	for {
		held, ok := s.waitRoom(ctx, i)
		if !ok {
			out.err = ctx.Err()
			return
		}
		n := want()
		if n <= 0 {
			s.ahead.give(held)
			return
		}
		if skip > 0 {
			n = jira.MaxPage // resuming inside a page: read it as it was
		}
		if !s.gate.enter(ctx, i, s.conc) {
			s.ahead.give(held)
			out.err = ctx.Err()
			return
		}
		pg, err := s.c.Search(ctx, jql, s.fields, token, n)
		s.gate.leave(s.conc)
		if err != nil {
			s.ahead.give(held)
			out.err = err
			return
		}
		rows := make([][]any, len(pg.Issues))
		for k := range pg.Issues {
			if k < skip {
				continue // written by the page before; never converted
			}
			row := make([]any, len(s.cols))
			for j, c := range s.cols {
				row[j] = c.Value(&pg.Issues[k])
			}
			rows[k] = row
		}
		got(len(pg.Issues) - min(skip, len(pg.Issues)))
		skip = 0
		next := pg.NextPageToken
		if pg.IsLast {
			next = ""
		}
		s.fetched(len(rows))
		if held > len(rows) {
			s.ahead.give(held - len(rows))
			held = len(rows)
		}
		select {
		case out.pages <- slicePage{rows: rows, token: token, next: next, budget: held}:
		case <-ctx.Done():
			s.ahead.give(held)
			out.err = ctx.Err()
			return
		}
		if next == "" {
			return
		}
		token = next
	}
}

func (s *sliceRead) setHead(i int) {
	s.mu.Lock()
	s.head = i
	s.broadcastLocked()
	s.mu.Unlock()
}

func (s *sliceRead) broadcastLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *sliceRead) fetched(n int) {
	s.mu.Lock()
	s.buffered += n
	s.mu.Unlock()
}

func (s *sliceRead) consumed(n int) {
	s.mu.Lock()
	s.buffered -= n
	s.broadcastLocked()
	s.mu.Unlock()
}

// roomFor: leaf i may start or read on. The leaf being written always may;
// others only while the walk's read-ahead holds fewer than bufferRows rows.
func (s *sliceRead) roomFor(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return i <= s.head || s.buffered+jira.MaxPage <= bufferRows
}

// waitRoom waits until leaf i may read a page: room in the walk's
// read-ahead and, for a leaf read ahead, in the shared one (held: the rows
// reserved there, for the page to carry).
func (s *sliceRead) waitRoom(ctx context.Context, i int) (held int, ok bool) {
	for {
		if ctx.Err() != nil {
			return 0, false
		}
		ahead := s.ahead.changed()
		if s.roomFor(i) {
			s.mu.Lock()
			head := i <= s.head
			s.mu.Unlock()
			if head {
				return 0, true
			}
			if s.ahead.take(jira.MaxPage) {
				return jira.MaxPage, true
			}
		}
		s.mu.Lock()
		ch := s.wake
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ahead:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// skipPieces moves a fresh position past whole pieces while their counts
// fit in n rows, without reading them: the rows Jira counted there are the
// rows the walk would read. It returns the new position and the rows left
// to skip by reading.
func skipPieces(p *Plan, leaves []leaf, from Cursor, n int) (Cursor, int) {
	if p.Field == "" || from.PageToken != "" || from.Offset != 0 {
		return from, n
	}
	i := from.Slot
	for i < len(leaves) {
		k := leaves[i].piece
		if i > 0 && leaves[i-1].piece == k {
			break // inside a piece: its leaves are not counted one by one
		}
		c := p.Counts[k]
		if c > n {
			break
		}
		n -= c
		for i < len(leaves) && leaves[i].piece == k {
			i++
		}
	}
	if i >= len(leaves) {
		return Cursor{Done: true}, 0
	}
	from.Slot = i
	return from, n
}

// segmentEnd is where a page of at most rowCap rows can end at a piece
// boundary: the leaf after the last whole piece that fits. It returns from
// itself when not even the first (rest of a) piece fits.
func segmentEnd(p *Plan, leaves []leaf, from int, rowCap int) int {
	if rowCap < 0 {
		return len(leaves)
	}
	if p.Field == "" {
		return from
	}
	rows, i := 0, from
	for i < len(leaves) {
		k := leaves[i].piece
		j := i
		for j < len(leaves) && leaves[j].piece == k {
			j++
		}
		// The piece's rows from leaf i on: its count, shared by leaves.
		share := 0
		for x := i; x < j; x++ {
			share += leaves[x].rows
		}
		if i > 0 && leaves[i-1].piece == k {
			// Part of the piece was read already: what is left is an estimate.
			share += share / 2
		} else {
			share = p.Counts[k]
		}
		if rows+share > rowCap {
			break
		}
		rows += share
		i = j
	}
	return i
}
