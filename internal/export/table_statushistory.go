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
// date. Durations are calendar time (seconds between the two instants);
// the interval the issue is still in has no Left and no duration. Time in
// status is the sum of DurationSeconds by issue and status.
var statusHistoryTable = &Table{
	Name: "StatusHistory", EntityType: "StatusInterval", Key: "Id",
	Doc: "Status intervals of each issue: entered, left, calendar seconds — time in status.",
	Columns: []Column{
		col("Id", EdmString, true), issueIDCol(), col("IssueKey", EdmString, true),
		col("Status", EdmString, false), boundedByUpdated("Entered", true), boundedByUpdated("Left", false),
		col("DurationSeconds", EdmInt64, false), col("EnteredBy", EdmString, false),
	},
	Refs: []Ref{{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "StatusHistory"}},
	PerIssue: func(ctx context.Context, c *jira.Client, ids []string) ([][][]any, error) {
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
			out[at[k]] = statusIntervals(&issues[k], logs[at[k]])
		}
		return out, nil
	},
}

// statusIntervals are the status intervals of one issue.
func statusIntervals(is *jira.Issue, l jira.IssueChangelog) [][]any {
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
	row := func(left any, dur any) {
		rows = append(rows, []any{is.ID + "-" + strconv.Itoa(len(rows)), issueID, is.Key, status, entered, left, dur, by})
	}
	for _, ch := range changes {
		left := ch.at
		if left.Before(entered) {
			left = entered
		}
		row(left, int64(left.Sub(entered)/time.Second))
		status, entered, by = ch.to, left, ch.by
	}
	row(nil, nil)
	return rows
}

func str(raw []byte) string {
	s, _ := jsonscan.String(raw)
	return s
}
