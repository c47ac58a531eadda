package export

import (
	"context"
	"errors"

	"ferry/internal/jira"
)

// Cursor is a position in a JQL result. It is what a $skiptoken resumes,
// so it names a place in Jira's own enumeration, in one of two modes:
//
//   - sliced (Mode "s", slices.go): the walk's Plan, the leaf (Slot), the
//     nextPageToken of the search page holding the next row (PageToken, ""
//     for the leaf's first page) and the row's index in it (Offset).
//   - ids (Mode ""): the id page (by the token that fetches it), the index
//     of the next id within it, and for tables with several rows per issue
//     (Changelog) how many rows of that issue were already served.
//
// The zero Cursor is the start; Done marks the end. Count carries $count,
// computed once per walk.
type Cursor struct {
	Mode      string `json:"m,omitempty"`
	Plan      *Plan  `json:"s,omitempty"`
	Slot      int    `json:"i,omitempty"`
	PageToken string `json:"p,omitempty"`
	Offset    int    `json:"o,omitempty"`
	Row       int    `json:"r,omitempty"` // rows of the issue at Offset already served
	Done      bool   `json:"d,omitempty"`
	Count     *int   `json:"n,omitempty"`
	// Wide: the walk asks Jira without naming values (odata.FieldMap.Widen),
	// as its first page had to; every page of a walk sends the same JQL.
	Wide bool `json:"w,omitempty"`
}

// modeSlices marks a sliced walk's cursor.
const modeSlices = "s"

// fresh reports a walk not begun.
func (c Cursor) fresh() bool {
	return c.Mode == "" && c.PageToken == "" && c.Offset == 0 && c.Row == 0 && !c.Done
}

// Pos is where one emitted item sits: Before resumes at it, After right
// after it.
type Pos struct{ Before, After Cursor }

// Fetcher streams issues for a JQL query: ids are enumerated sequentially
// (search/jql id pages of up to 5000, the only order-preserving way), issues
// are hydrated in parallel (issue/bulkfetch, 100 at a time) on a bounded
// pool, and emitted in exactly the order the JQL asks for. Only a few batches
// are ever in flight: when the client reads slowly, emit blocks, the window
// fills and upstream work pauses. When ctx ends, all upstream work stops.
type Fetcher struct {
	Client  *jira.Client
	Workers int // parallel bulkfetch calls; default 4
	// Window is how many batches may be fetched ahead of the one being
	// written; default 2×Workers.
	Window int
	// IDPageSize is the search/jql page size; default jira.MaxIDPage.
	IDPageSize int
	// ReadAhead, if set, bounds the rows read ahead across every walk that
	// shares it (Feeds shares one among all its feeds).
	ReadAhead *ReadAhead
	// LeafRows, if set, is the issues per slice of a sliced walk (slices.go;
	// tests make it small so that small sites are sliced too).
	LeafRows int
	// HeadPages, if set, is how many pages a walk of changes reads as one
	// chain before the rest is sliced (head.go; tests make it small).
	HeadPages int
	// FirstBatch, if set, caps the first bulkfetch batch: a small page that
	// may stop after a few issues need not hydrate a hundred first.
	FirstBatch int
	// OnFirst, if set, runs once before the first item is emitted, or at
	// the end when there is none — never when fetching fails first. A
	// handler commits its response headers there, so that a query Jira
	// refuses still gets a proper error status.
	OnFirst func() error
}

// started runs OnFirst at most once.
func (f *Fetcher) started() error {
	if f.OnFirst == nil {
		return nil
	}
	fn := f.OnFirst
	f.OnFirst = nil
	return fn()
}

type batch struct {
	ids   []string
	page  string // token of the id page the ids come from
	first int    // index of ids[0] within that page
	next  Cursor // position after the last id of this batch
	done  chan struct{}
	res   any
	at    []int // res[k] hydrates ids[at[k]]
	err   error
}

// pos is the position of the item hydrated from ids[i].
func (b *batch) pos(i int) Pos {
	p := Pos{Before: Cursor{PageToken: b.page, Offset: b.first + i}, After: b.next}
	if i+1 < len(b.ids) {
		p.After = Cursor{PageToken: b.page, Offset: b.first + i + 1}
	}
	return p
}

// Stream emits up to limit issues (limit < 0: all) starting at from, with the
// given fields, and returns the cursor after the last emitted issue.
func (f *Fetcher) Stream(ctx context.Context, jql string, fields []string, from Cursor, limit int, emit func(jira.Issue) error) (Cursor, error) {
	return streamBatches(ctx, f, jql, from, limit, func(ctx context.Context, ids []string) ([]jira.Issue, []int, error) {
		issues, err := f.Client.BulkFetch(ctx, ids, fields)
		return issues, indexOf(ids, issues, func(is *jira.Issue) string { return is.ID }), err
	}, func(is jira.Issue, _ Pos) error { return emit(is) })
}

// indexOf maps each hydrated item back to the index of its id: Jira leaves
// out issues the caller cannot see, so the two lists need not align.
func indexOf[T any](ids []string, items []T, id func(*T) string) []int {
	at := make([]int, len(items))
	j := 0
	for k := range items {
		for j < len(ids) && ids[j] != id(&items[k]) {
			j++
		}
		at[k] = min(j, len(ids)-1)
		j++
	}
	return at
}

// StreamRows is Stream with each issue already converted to the values of
// cols. Conversion happens on the hydrating workers, in parallel, so the
// single writer only encodes; the issue's raw JSON is dropped right after.
func (f *Fetcher) StreamRows(ctx context.Context, jql string, fields []string, cols []Column, from Cursor, limit int, emit func([]any) error) (Cursor, error) {
	return f.StreamRowsAt(ctx, jql, fields, cols, from, limit, func(vals []any, _ Pos) error { return emit(vals) })
}

// StreamRowsAt is StreamRows that also tells where each row sits, so that a
// page can end on any row and resume exactly there.
func (f *Fetcher) StreamRowsAt(ctx context.Context, jql string, fields []string, cols []Column, from Cursor, limit int, emit func([]any, Pos) error) (Cursor, error) {
	return streamBatches(ctx, f, jql, from, limit, func(ctx context.Context, ids []string) ([][]any, []int, error) {
		issues, err := f.Client.BulkFetch(ctx, ids, fields)
		if err != nil {
			return nil, nil, err
		}
		rows := make([][]any, len(issues))
		for i := range issues {
			row := make([]any, len(cols))
			for j, c := range cols {
				row[j] = c.Value(&issues[i])
			}
			rows[i] = row
		}
		return rows, indexOf(ids, issues, func(is *jira.Issue) string { return is.ID }), nil
	}, emit)
}

// streamBatches is the pipeline: a sequential id enumerator, a bounded pool
// of hydrators, and an in-order emitter.
func streamBatches[T any](ctx context.Context, f *Fetcher, jql string, from Cursor, limit int,
	hydrate func(context.Context, []string) ([]T, []int, error), emit func(T, Pos) error) (Cursor, error) {
	if from.Done || limit == 0 {
		return from, f.started()
	}
	workers := f.Workers
	if f.Client.Limits != nil {
		// Hydration is paced by the tenant's limits: enough workers for its
		// cap, each call waiting for its turn.
		workers = max(f.Client.Limits.Cap(), 1)
	}
	if workers <= 0 {
		workers = 4
	}
	window := f.Window
	if window <= 0 {
		window = min(2*workers, 16) // at most 1,600 issues ahead of the writer
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	order := make(chan *batch, window) // batches in JQL order, bounded: backpressure
	work := make(chan *batch, window)
	enumErr := make(chan error, 1)
	exhausted := false // read only after enumErr: the enumerator wrote it before sending
	go func() {
		defer close(order)
		defer close(work)
		var err error
		exhausted, err = f.enumerate(ctx, jql, from, limit, func(b *batch) bool {
			select {
			case order <- b:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- b:
				return true
			case <-ctx.Done():
				return false
			}
		})
		enumErr <- err
	}()
	for range workers {
		go func() {
			for b := range work {
				b.res, b.at, b.err = hydrate(ctx, b.ids)
				close(b.done)
			}
		}()
	}
	pos := from
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return pos, ctx.Err()
		}
		if b.err != nil {
			return pos, b.err
		}
		for k, item := range b.res.([]T) {
			if err := f.started(); err != nil {
				return pos, err
			}
			p := b.pos(b.at[k])
			if err := emit(item, p); err != nil {
				return p.Before, err
			}
			pos = p.After
		}
		pos = b.next
	}
	if err := <-enumErr; err != nil && !errors.Is(err, context.Canceled) {
		return pos, err
	}
	if err := ctx.Err(); err != nil {
		return pos, err
	}
	if exhausted {
		pos = Cursor{Done: true} // also when the last page held nothing
	}
	return pos, f.started()
}

// enumerate walks id pages from `from` and hands out batches of at most
// jira.MaxBulkFetch ids until limit ids or the end of the results.
// exhausted reports that it reached the end of the results.
func (f *Fetcher) enumerate(ctx context.Context, jql string, from Cursor, limit int, send func(*batch) bool) (exhausted bool, err error) {
	size := f.IDPageSize
	if size <= 0 {
		size = jira.MaxIDPage
	}
	token, skip, left := from.PageToken, from.Offset, limit
	if limit >= 0 {
		// A page that wants a few rows lists a few ids (one more: whether
		// more follow), not 5000.
		size = min(size, skip+limit+1)
	}
	batchSize := jira.MaxBulkFetch
	if f.FirstBatch > 0 {
		batchSize = min(f.FirstBatch, batchSize)
	}
	for {
		page, err := f.Client.SearchIDs(ctx, jql, token, size)
		if err != nil {
			return false, err
		}
		ids := page.IDs
		if skip > len(ids) {
			skip = len(ids)
		}
		for i := skip; i < len(ids); {
			end := min(i+batchSize, len(ids))
			batchSize = jira.MaxBulkFetch
			if left >= 0 && end-i > left {
				end = i + left
			}
			b := &batch{ids: ids[i:end], page: token, first: i, done: make(chan struct{})}
			switch {
			case end < len(ids):
				b.next = Cursor{PageToken: token, Offset: end}
			case page.IsLast:
				b.next = Cursor{Done: true}
			default:
				b.next = Cursor{PageToken: page.NextPageToken}
			}
			if !send(b) {
				return false, ctx.Err()
			}
			if left >= 0 {
				left -= end - i
				if left == 0 {
					return page.IsLast && end == len(ids), nil
				}
			}
			i = end
		}
		if page.IsLast {
			return true, nil
		}
		token, skip = page.NextPageToken, 0
	}
}

// CountIDs counts the issues jql matches exactly by walking id pages (5000
// per call): $count must be exact, and Jira's approximate count is not.
func (f *Fetcher) CountIDs(ctx context.Context, jql string) (int, error) {
	n, token := 0, ""
	for {
		page, err := f.Client.SearchIDs(ctx, jql, token, jira.MaxIDPage)
		if err != nil {
			return 0, err
		}
		n += len(page.IDs)
		if page.IsLast {
			return n, nil
		}
		token = page.NextPageToken
	}
}

// Skip advances a cursor by n ids without hydrating anything.
func (f *Fetcher) Skip(ctx context.Context, jql string, from Cursor, n int) (Cursor, error) {
	pos := from
	if n <= 0 || from.Done {
		return pos, nil
	}
	size := f.IDPageSize
	if size <= 0 {
		size = jira.MaxIDPage
	}
	for n > 0 {
		page, err := f.Client.SearchIDs(ctx, jql, pos.PageToken, size)
		if err != nil {
			return pos, err
		}
		avail := len(page.IDs) - pos.Offset
		if n < avail {
			return Cursor{PageToken: pos.PageToken, Offset: pos.Offset + n}, nil
		}
		n -= max(avail, 0)
		if page.IsLast {
			return Cursor{Done: true}, nil
		}
		pos = Cursor{PageToken: page.NextPageToken}
	}
	return pos, nil
}
