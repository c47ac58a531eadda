package export

import (
	"context"
	"time"

	"ferry/internal/jira"
)

// Walk is what a feed reads: the issues where selects, ordered by order
// (a JQL ORDER BY clause without the keywords), each turned into the values
// of Cols (Fields are what Jira must return for them).
type Walk struct {
	Where, Order string
	Fields       []string
	Cols         []Column
	Zone         *time.Location // the user's: JQL reads date-times in it
	// Changes: the walk selects the issues changed since a moment (an
	// incremental refresh), expected to be few: it is read as one chain
	// first, with nothing spent on planning (head.go).
	Changes bool
}

func (w Walk) jql() string {
	q := w.Where
	if w.Order != "" {
		q += " ORDER BY " + w.Order
	}
	return q
}

// smallRead is the most rows read with one search page and no plan: a
// request for a few rows costs one call.
const smallRead = jira.MaxPage

// chainRows: a walk of at most this many issues in an order Ferry cannot
// cut is read on one chain of pages (a few round trips, half the points of
// listing ids and hydrating them).
const chainRows = 5 * jira.MaxPage

// quotaTight reports that Jira's points pool could not carry a walk of n
// issues read by id (two points an issue) with room to spare, while one
// chain with fields (one point an issue) costs half.
func (f *Fetcher) quotaTight(n int) bool {
	t := f.Client.Limits
	if t == nil {
		return false
	}
	st := t.Quota()
	return st.Known && float64(n)*pointsPerRowIDs > float64(st.Remaining)/2
}

// Rows streams the walk's rows from `from` with their positions. With
// rowCap ≥ 0 every issue is a row and the page ends after at most rowCap
// rows, where the next page can resume without reading anything twice: at
// the end of a piece of the plan when one fits, or exactly at rowCap. It
// returns the position after the last row; plan, when not nil, is called
// once the walk's plan is known (before any row is read) with the issues
// the walk selects (-1: not counted).
//
// A fresh walk is sliced when its order allows (slices.go), one chain when
// it wants at most smallRead rows, one chain first when it selects changes
// (head.go), and otherwise listed by id and hydrated
// (the only way to read an arbitrary order in parallel, at twice the
// points).
func (f *Fetcher) Rows(ctx context.Context, w Walk, from Cursor, rowCap int, plan func(total int, from Cursor) error,
	emit func(vals []any, at, after Cursor) error) (Cursor, error) {
	if from.Done {
		if plan != nil {
			if err := plan(countOf(from), from); err != nil {
				return from, err
			}
		}
		return from, f.started()
	}
	if from.fresh() {
		_, _, sliceable := sortKey(w.Order)
		switch {
		case rowCap >= 0 && rowCap <= smallRead:
			from = Cursor{Mode: modeSlices, Plan: &Plan{Total: -1}}
		case sliceable && w.Changes:
			from = Cursor{Mode: modeSlices, Plan: &Plan{Total: -1, Head: true}}
		case sliceable:
			p, err := planWalk(ctx, f.Client, w.Where, w.Order, w.Zone, f.LeafRows)
			if err != nil {
				return from, err
			}
			from = Cursor{Mode: modeSlices, Plan: p}
			if p.Total == 0 {
				from = Cursor{Done: true}
			}
		default:
			// An order Ferry cannot cut: listing ids and hydrating them in
			// parallel is fast but costs twice the points of one chain of
			// pages with fields. Jira's count decides: a walk of a few pages,
			// or one the quota could not carry twice over, is one chain.
			n, err := f.Client.ApproximateCount(ctx, boundedJQL(w.Where))
			if err != nil {
				return from, err
			}
			if n == 0 {
				from = Cursor{Done: true, Count: &n}
			} else if n <= chainRows || f.quotaTight(n) {
				from = Cursor{Mode: modeSlices, Plan: &Plan{Total: n}}
			} else {
				from.Count = &n
			}
		}
		if from.Mode == modeSlices || from.Done {
			n := 0
			if from.Plan != nil {
				n = from.Plan.Total
			}
			from.Count = &n
			if n < 0 {
				from.Count = nil
			}
		}
	}
	if from.Mode != modeSlices {
		if plan != nil {
			if err := plan(countOf(from), from); err != nil {
				return from, err
			}
		}
		if from.Done {
			return from, f.started()
		}
		return f.StreamRowsAt(ctx, w.jql(), w.Fields, w.Cols, from, rowCap, func(vals []any, pos Pos) error {
			return emit(vals, pos.Before, pos.After)
		})
	}
	if plan != nil {
		if err := plan(countOf(from), from); err != nil {
			return from, err
		}
	}
	if from.Done {
		return from, f.started()
	}
	p := from.Plan
	if p.Head {
		return f.head(ctx, w, from, rowCap, emit)
	}
	leaves := p.leaves()
	if from.Slot >= len(leaves) {
		return Cursor{Done: true}, f.started()
	}
	s := &sliceRead{c: f.Client, plan: p, leaves: leaves, where: w.Where, order: w.Order, fields: w.Fields, cols: w.Cols,
		conc: f.concurrency, ahead: f.ReadAhead}
	end := segmentEnd(p, leaves, from.Slot, rowCap)
	capAt := -1
	if rowCap >= 0 && end == from.Slot {
		end, capAt = len(leaves), rowCap // not a whole piece fits: one chain at a time, to exactly rowCap rows
	}
	count := from.Count
	pos, err := s.run(ctx, from, end, capAt, func(vals []any, at, after Cursor) error {
		if err := f.started(); err != nil {
			return err
		}
		at.Count, after.Count = count, count
		return emit(vals, at, after)
	})
	if err != nil {
		return pos, err
	}
	pos.Count = count
	return pos, f.started()
}

func countOf(c Cursor) int {
	if c.Count != nil {
		return *c.Count
	}
	return -1
}

// concurrency is how many calls the walk may have in flight: the tenant's
// current limit (limits.go), or Workers without one.
func (f *Fetcher) concurrency() int {
	n := f.Workers
	if f.Client.Limits != nil {
		n = f.Client.Limits.Concurrency()
	}
	if n <= 0 {
		n = 4
	}
	return n
}
