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
//     then cut into leaves that end where a search page does: the piece's
//     count says how many pages it takes, the pages are shared among its
//     leaves, and each leaf gets the share of the piece's length its pages
//     hold. Only the last page of a piece is partly empty, give or take the
//     data's spread (pieceLeaves). The count is also $count, so $count
//     costs nothing more.
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
	// leafRows is the issues per leaf without a tenant's parallelism to
	// size them by: twenty pages. Long leaves need more read-ahead (the
	// rows other chains read while the leaf being written takes its twenty
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
	fineLeaf = jira.MaxPage // issues per leaf at a page's end: one page
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
	// Cut is the rule the plan's pieces are cut into leaves by (planCut):
	// a position names a leaf by its number, so a position planned under
	// another rule would resume elsewhere.
	Cut int `json:"k,omitempty"`
	// Edge, when set, is a JQL condition on the walk's sort field that
	// leaves out the rows its head chain wrote already (head.go): the plan
	// covers the rest of the walk.
	Edge string `json:"e,omitempty"`
	// Head marks a walk read as one chain first (head.go): a position in it
	// resumes the head, which may still cut the rest into slices.
	Head bool `json:"hd,omitempty"`
}

// planCut is the current rule for cutting pieces into leaves: 2, leaves
// that end where a search page does.
const planCut = 2

// resumable reports that a position in this plan names the leaf it named
// when the plan was made: one chain, or pieces cut by the current rule.
func (p *Plan) resumable() bool { return p == nil || p.Field == "" || p.Cut == planCut }

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

// expectedPages is the search pages a leaf of about e issues takes: one at
// least (an empty leaf is still a call), one more for each full page it
// may overflow. When cut from a piece (cut), its count varies: a variance
// of spread × e, and never less than a row either way (minute bounds).
func expectedPages(e float64, cut bool, spread float64) float64 {
	if !cut {
		return max(1, math.Ceil(e/jira.MaxPage))
	}
	sd := max(1, math.Sqrt(spread*e))
	pages := 1.0
	for k := 1; ; k++ {
		edge := float64(k*jira.MaxPage) + 0.5
		q := 0.5 * math.Erfc((edge-e)/(sd*math.Sqrt2)) // P(count > k pages)
		if q < 1e-9 && edge > e {
			return pages
		}
		pages += q
	}
}

// spread is how much the counts of equal lengths of the walk vary, as a
// multiple of their mean (1 for issues made at random, 0 for issues made
// at an even pace): estimated from neighbouring pieces' counts, so that a
// trend across the walk is not taken for spread, and by a low quantile of
// their differences, so that a few pieces with part of a gap (a project's
// issues missing from a query) are not either. Pieces at the walk's ends (open-ended), in gaps
// and at their edges are left out; too few left: 1.
func (p *Plan) spread() float64 {
	var diffs []float64
	mean := 0.0
	gapEdge := func(k int) bool { return p.Counts[k-1] == 0 || p.Counts[k+1] == 0 }
	for k := 1; k+2 < len(p.Counts); k++ {
		a, b := p.Counts[k], p.Counts[k+1]
		if a == 0 || b == 0 || gapEdge(k) || gapEdge(k+1) {
			continue
		}
		diffs = append(diffs, math.Abs(float64(b-a)))
		mean += float64(a+b) / 2
	}
	if len(diffs) < 2 {
		return 1
	}
	mean /= float64(len(diffs))
	slices.Sort(diffs)
	// A third of |a−b| (two normals' difference) lies below 0.4307 of its
	// standard deviation; a low quantile, as pieces with a gap inside them
	// (a project's block shorter than a piece) differ by far more.
	sd := diffs[(len(diffs)-1)/3] / 0.4307 / math.Sqrt2
	return sd * sd / mean
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
	fine := p.finePieces()
	spread, typical := p.spread(), p.typical()
	for i := range p.pieces() {
		k := i
		if p.Desc {
			k = p.pieces() - 1 - i
		}
		c := p.Counts[k]
		if c == 0 {
			continue // nothing there: no call at all
		}
		size := p.span()
		if fine[k] {
			size = min(max(p.leafRows()*fineLeaf/leafRows, 1), size)
		}
		piece := p.pieceLeaves(k, size, fine[k], spread, typical)
		if p.Desc {
			for a, b := 0, len(piece)-1; a < b; a, b = a+1, b-1 {
				piece[a], piece[b] = piece[b], piece[a]
			}
		}
		out = append(out, piece...)
	}
	return out
}

// pieceLeaves cuts piece k into leaves of about size issues that end where
// a search page does: the piece is to take a number of pages (the fewest
// its count needs, or one or two more), shared among m leaves as evenly as
// whole pages go, and each leaf is that share of the piece's length, so
// all are expected to be as full as each other. A leaf holds its expected
// count give or take the data's spread, so one meant to fill its last page
// may overflow it; m and the pages are the pair with the fewest pages
// expected. A piece read as one leaf holds exactly its count.
func (p *Plan) pieceLeaves(k, size int, fine bool, spread, typical float64) []leaf {
	c := p.Counts[k]
	lo := max((c+2*size-1)/(2*size), 1) // leaves of at most 2 × size
	if fine {
		lo = (c + size - 1) / size // at most size: a page's last chains end together
	}
	hi := max(2*c/size, lo) // and at least size / 2
	from, to := p.occupied(k, typical)
	width := max(to-from, 1) // a leaf is at least a minute long
	lo, hi = int(min(int64(lo), width)), int(min(int64(hi), width))
	least := (c + jira.MaxPage - 1) / jira.MaxPage
	// From leaves of half size outwards, so that of leaves expected to take
	// about as many pages, those nearest half size are chosen (others only
	// for a fifth of a page or more): a leaf is a chain of dependent pages,
	// and the walk's parallelism may have been judged low when it was
	// planned (from the first round trips).
	const moveFor = 0.2
	m0 := min(max((2*c+size/2)/size, lo), hi)
	bestM, bestPages, bestExpect := m0, max(least, m0), math.Inf(1)
	for d := 0; m0+d <= hi || m0-d >= lo; d++ {
		for i, m := range []int{m0 + d, m0 - d} {
			if m < lo || m > hi || d == 0 && i == 1 {
				continue
			}
			// The fewest pages the piece can take, or a page or two more
			// when its spread would often overflow them.
			for pages := max(least, m); pages <= max(least, m)+2; pages++ {
				expect := float64(least)
				if m > 1 {
					// Leaves of base+1 pages and of base, as full as each other.
					base, more := pages/m, pages%m
					full := float64(c) / float64(pages)
					expect = float64(more)*expectedPages(full*float64(base+1), true, spread) +
						float64(m-more)*expectedPages(full*float64(base), true, spread)
				}
				if expect < bestExpect-moveFor {
					bestM, bestPages, bestExpect = m, pages, expect
				}
			}
		}
	}
	return p.cutPiece(k, int64(bestM), int64(bestPages), c, from, to)
}

// cutPiece is piece k (of c issues) as m leaves over the part of it where
// its issues are expected, [from, to) (minutes), the first and last leaf
// stretched to the piece's bounds (over the part expected empty: no call
// of its own).
func (p *Plan) cutPiece(k int, m, pages int64, c int, from, to int64) []leaf {
	out := make([]leaf, 0, m)
	// Leaf j holds pages[j] of the pages the piece is to take, all as
	// full as each other: leaves end where a page does.
	at := func(j int64) int64 {
		cum := pages/m*j + min(j, pages%m)
		return safeMinute(from+(to-from)*cum/pages, p.zone())
	}
	for j := range m {
		l := leaf{piece: k, lo: at(j), hi: at(j + 1), rows: c}
		if m > 1 && to > from {
			l.rows = int(int64(c) * (l.hi - l.lo) / (to - from))
		}
		out = append(out, l)
	}
	out[0].lo, _ = p.pieceBounds(k)
	_, out[len(out)-1].hi = p.pieceBounds(k)
	return out
}

// occupied is the part of piece k its issues are expected in: all of it,
// except at the edge of a gap (a piece with none beside it), where a piece
// holding a share of a typical piece's count holds it on the side away
// from the gap.
func (p *Plan) occupied(k int, typical float64) (from, to int64) {
	n := int64(p.pieces())
	from, to = p.cut(int64(k), n), p.cut(int64(k)+1, n)
	if k == 0 || k+1 >= p.pieces() || typical <= 0 {
		return from, to
	}
	share := float64(p.Counts[k]) / typical
	if share > 0.9 {
		return from, to
	}
	width := float64(to - from)
	switch before, after := p.Counts[k-1] == 0, p.Counts[k+1] == 0; {
	case before && !after:
		from = to - int64(math.Ceil(width*share))
	case after && !before:
		to = from + int64(math.Ceil(width*share))
	}
	return from, to
}

// typical is the median count of the pieces that hold issues, the walk's
// ends left out.
func (p *Plan) typical() float64 {
	var cs []int
	for k := 1; k+1 < len(p.Counts); k++ {
		if p.Counts[k] > 0 {
			cs = append(cs, p.Counts[k])
		}
	}
	if len(cs) == 0 {
		return 0
	}
	slices.Sort(cs)
	return float64(cs[len(cs)/2])
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
	if p.Edge != "" {
		conds = append(conds, p.Edge)
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
	return planRest(ctx, c, where, order, zone, leaf, "")
}

// planRest plans the part of the walk edge selects (a JQL condition; ""
// for all of it), as planWalk does.
func planRest(ctx context.Context, c *jira.Client, where, order string, zone *time.Location, leaf int, edge string) (*Plan, error) {
	field, desc, ok := sortKey(order)
	whereJQL := joinWhere(where, edge)
	p := &Plan{Field: field, Desc: desc, Zone: zone.String(), Leaf: leaf, Cut: planCut}
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
	p.Edge = edge
	if !ok || p.Total <= 2*p.span() || first.IsZero() || last.IsZero() {
		p.Field, p.Desc, p.Zone, p.Leaf, p.Span, p.Cut = "", false, "", 0, 0, 0
		return p, nil
	}
	p.Lo = first.Unix()/60 - 1
	p.Hi = last.Unix()/60 + 2
	k := min(max(minPieces, (p.Total+pieceRows-1)/pieceRows), maxPieces, (p.Total+p.span()-1)/p.span())
	k = min(k, int(p.Hi-p.Lo))
	p.Counts = make([]int, k)
	err = parallel(ctx, k-1, func(ctx context.Context, i int) error {
		n, err := c.ApproximateCount(ctx, boundedJQL(p.jql(leafOf(p, i), where, "")))
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
