package export

import (
	"context"
	"fmt"
	"slices"
	"time"

	"ferry/internal/jira"
)

// A walk that selects the issues changed since a moment (Power BI's
// incremental refresh asks for Updated ge RangeStart and Updated lt
// RangeEnd) is expected to be small, and for a small walk the points a plan
// spends before its first page (a count, two probes, the pieces' counts,
// each piece's partly empty last page) are most of what slicing costs over
// one sequential reader. So such a walk is read as one chain of pages from
// its first, with nothing spent before it: a walk of a few pages costs
// exactly what one search/jql loop pays.
//
// Should the chain still be going after headPages pages, the rest is cut
// into slices after all (planRest), so that a large window is not read at
// one page per round trip. The rest starts at the minute of the last row
// read: the rows of the current page before that minute are written, the
// others (usually one or two) are read again as the first rows of the
// rest, whose JQL is the walk's AND the sort field on the far side of that
// minute (Plan.Edge). A page whose rows all fall in one minute, or whose
// minute lies near a daylight-saving change, does not end the head; the
// chain reads on.

// headPages is how many pages a walk of changes reads as one chain before
// the rest is cut into slices: 1,500 issues, about two seconds of round
// trips at 150 ms.
const headPages = 15

func (f *Fetcher) headPages() int {
	if f.HeadPages > 0 {
		return f.HeadPages
	}
	return headPages
}

// head reads a walk of changes as one chain from `from` (a position in a
// Head plan), writing rows as Rows does, and cuts what is left after
// headPages pages into slices.
func (f *Fetcher) head(ctx context.Context, w Walk, from Cursor, rowCap int, emit func(vals []any, at, after Cursor) error) (Cursor, error) {
	field, desc, _ := sortKey(w.Order)
	fields := w.Fields
	if !slices.Contains(fields, field) {
		fields = append(slices.Clip(fields), field)
	}
	hp := from.Plan
	jql := w.jql()
	token, skip := from.PageToken, from.Offset
	pos := from
	emitted := 0
	for pages := 1; ; pages++ {
		n := jira.MaxPage
		if rowCap >= 0 {
			n = min(n, rowCap-emitted)
		}
		if skip > 0 {
			n = jira.MaxPage // resuming inside a page: read it as it was
		}
		pg, err := f.Client.Search(ctx, jql, fields, token, n)
		if err != nil {
			return pos, err
		}
		next := pg.NextPageToken
		if pg.IsLast {
			next = ""
		}
		// Write the whole page, unless the rest is cut into slices here.
		keep := len(pg.Issues)
		var rest *Plan
		if next != "" && pages >= f.headPages() && (rowCap < 0 || emitted+len(pg.Issues)-skip < rowCap) {
			if k, edge, ok := headEdge(pg.Issues, field, desc, w.Zone); ok && k >= skip {
				if rest, err = planRest(ctx, f.Client, w.Where, w.Order, w.Zone, f.LeafRows, edge); err != nil {
					return pos, err
				}
				if seen := len(pg.Issues) - k; rest.Total < seen {
					// Jira's count is behind the rows this page showed: read
					// the rest as one chain rather than trust it.
					rest = &Plan{Total: seen, Edge: edge}
				}
				keep = k
			}
		}
		for k := skip; k < keep; k++ {
			row := make([]any, len(w.Cols))
			for j, c := range w.Cols {
				row[j] = c.Value(&pg.Issues[k])
			}
			at := Cursor{Mode: modeSlices, Plan: hp, PageToken: token, Offset: k}
			after := Cursor{Mode: modeSlices, Plan: hp, PageToken: token, Offset: k + 1}
			switch {
			case k+1 == keep && rest != nil:
				after = restStart(rest)
			case k+1 == len(pg.Issues) && next == "":
				after = Cursor{Done: true}
			case k+1 == len(pg.Issues):
				after = Cursor{Mode: modeSlices, Plan: hp, PageToken: next}
			}
			if err := f.started(); err != nil {
				return at, err
			}
			if err := emit(row, at, after); err != nil {
				return at, err
			}
			pos = after
			emitted++
			if rowCap >= 0 && emitted >= rowCap {
				return pos, nil
			}
		}
		skip = 0
		if rest != nil {
			left := -1
			if rowCap >= 0 {
				left = rowCap - emitted
			}
			if start := restStart(rest); !start.Done {
				return f.Rows(ctx, w, start, left, nil, emit)
			}
			return Cursor{Done: true}, f.started()
		}
		if next == "" {
			return Cursor{Done: true}, f.started()
		}
		token = next
	}
}

// restStart is the first position of the rest of a walk, planned.
func restStart(rest *Plan) Cursor {
	if rest.Total == 0 || len(rest.leaves()) == 0 {
		return Cursor{Done: true}
	}
	return Cursor{Mode: modeSlices, Plan: rest}
}

// headEdge is where a head chain can hand over to slices after this page:
// the rows before the minute of its last row (in the walk's direction),
// of which there are k, are the head's; edge selects the rest of the walk
// (the sort field at or past that minute). ok is false when no row would be
// written, the minute lies near a daylight-saving change (a local minute
// there may name two instants), or the page is not in the field's order.
func headEdge(issues []jira.Issue, field string, desc bool, zone *time.Location) (k int, edge string, ok bool) {
	if len(issues) == 0 {
		return 0, "", false
	}
	if zone == nil {
		zone = time.UTC
	}
	minutes := make([]int64, len(issues))
	for i := range issues {
		t, err := issueTime(issues[i], field)
		if err != nil {
			return 0, "", false
		}
		minutes[i] = floorMinute(t)
	}
	m := minutes[len(minutes)-1]
	bound, op := m, ">="
	if desc {
		bound, op = m+1, "<"
	}
	if safeMinute(bound, zone) != bound {
		return 0, "", false
	}
	head := func(x int64) bool { return x < bound }
	if desc {
		head = func(x int64) bool { return x >= bound }
	}
	for k < len(minutes) && head(minutes[k]) {
		k++
	}
	for _, x := range minutes[k:] {
		if head(x) {
			return 0, "", false // not ordered by the field: leave it one chain
		}
	}
	if k == 0 {
		return 0, "", false
	}
	return k, fmt.Sprintf(`%s %s "%s"`, field, op, jqlMinute(bound, zone)), true
}

// floorMinute is t's minute since the Unix epoch, rounded down.
func floorMinute(t time.Time) int64 {
	s := t.Unix()
	m := s / 60
	if s < 0 && s%60 != 0 {
		m--
	}
	return m
}
