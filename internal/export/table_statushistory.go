package export

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"

	"ferry/internal/jira"
	"ferry/internal/jsonscan"
)

// statusHistoryTable: one row per status interval of each issue — from its
// creation (or a status change) to the next status change — computed on
// the fly from the issue's changelog (status changes only) and its created
// date. DurationSeconds is calendar time (seconds between the two
// instants); WorkingSeconds is the part of it inside the data source's
// working calendar (workingtime.go), null without one. The interval the
// issue is still in has no Left and neither duration. Time in status is the
// sum of DurationSeconds (or WorkingSeconds) by issue and status.
var statusHistoryTable = &Table{
	Name: "StatusHistory", EntityType: "StatusInterval", Key: "Id",
	Doc: "Status intervals of each issue: entered, left, calendar seconds and working seconds — time in status.",
	Columns: []Column{
		col("Id", EdmString, true), issueIDCol(), col("IssueKey", EdmString, true),
		col("Status", EdmString, false), boundedByUpdated("Entered", true), boundedByUpdated("Left", false),
		col("DurationSeconds", EdmInt64, false), col("EnteredBy", EdmString, false),
		// Last, so that CSV columns read by position before it stay put.
		col("WorkingSeconds", EdmInt64, false),
	},
	Refs: []Ref{{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "StatusHistory"}},
	PerIssue: func(ctx context.Context, c *jira.Client, src *DataSource, ids []string) ([][][]any, error) {
		var cal *calendar
		if src != nil {
			cal = src.WorkingTime.compile()
		}
		var issues []jira.Issue
		var logs []jira.IssueChangelog
		var errs [2]error
		parallel(ctx, 2, func(ctx context.Context, i int) error {
			if i == 0 {
				issues, errs[0] = c.BulkFetch(ctx, ids, []string{"key", "created", "status"})
			} else {
				logs, errs[1] = changelogsOf(ctx, c, ids, []string{"status"})
			}
			return nil
		})
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		out := make([][][]any, len(ids))
		at := indexOf(ids, issues, func(is *jira.Issue) string { return is.ID })
		for k := range issues {
			out[at[k]] = statusIntervals(&issues[k], logs[at[k]], cal)
		}
		return out, nil
	},
}

// statusIntervals are the status intervals of one issue; cal, if not nil,
// is the working calendar.
func statusIntervals(is *jira.Issue, l jira.IssueChangelog, cal *calendar) [][]any {
	created, err := ParseJiraTime(str(is.Fields["created"]))
	if err != nil {
		return nil
	}
	type change struct {
		at       time.Time
		id       int64
		from, to any
		by       any
	}
	var changes []change
	for _, h := range l.Histories {
		t, err := ParseJiraTime(h.Created)
		if err != nil {
			continue
		}
		id, _ := strconv.ParseInt(h.ID, 10, 64)
		var by any
		if h.Author != nil {
			by = h.Author.DisplayName
		}
		for _, it := range h.Items {
			if it.FieldID == "status" || it.FieldID == "" && it.Field == "status" {
				changes = append(changes, change{at: t, id: id, from: deref(it.FromString), to: deref(it.ToString), by: by})
			}
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.id, b.id))
	})
	var current any
	if s, ok := displayString(is.Fields["status"]); ok {
		current = s
	}
	status, entered, by := current, created, any(nil)
	if len(changes) > 0 {
		status = changes[0].from
	}
	issueID := atoi64(is.ID)
	var rows [][]any
	row := func(left, dur, work any) {
		rows = append(rows, []any{is.ID + "-" + strconv.Itoa(len(rows)), issueID, is.Key, status, entered, left, dur, by, work})
	}
	for _, ch := range changes {
		left := ch.at
		if left.Before(entered) {
			left = entered
		}
		var work any
		if cal != nil {
			work = int64(cal.working(entered, left) / time.Second)
		}
		row(left, int64(left.Sub(entered)/time.Second), work)
		status, entered, by = ch.to, left, ch.by
	}
	row(nil, nil, nil)
	return rows
}

func str(raw []byte) string {
	s, _ := jsonscan.String(raw)
	return s
}
