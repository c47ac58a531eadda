package export

import (
	"context"
	"encoding/json"

	"ferry/internal/jira"
)

// worklogsTable: every work log entry of the data source's issues. The
// issues are read a hundred at a time with their "worklog" field (the
// first entries of each, as Jira embeds them); only an issue with more
// entries than Jira embeds is paged on its own (issue/{id}/worklog).
var worklogsTable = &Table{
	Name: "Worklogs", EntityType: "Worklog", Key: "Id",
	Doc: "Work logged on the issues: who, when, seconds spent, comment.",
	Columns: []Column{
		col("Id", EdmInt64, true), issueIDCol(), col("IssueKey", EdmString, true),
		col("Author", EdmString, false), col("Started", EdmDateTimeOffset, true),
		col("TimeSpentSeconds", EdmInt64, true), col("Comment", EdmString, false),
		boundedByUpdated("Created", true), boundedByUpdated("Updated", true),
	},
	Refs: []Ref{{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "Worklogs"}},
	PerIssue: func(ctx context.Context, c *jira.Client, _ *DataSource, ids []string) ([][][]any, error) {
		return embeddedPerIssue(ctx, c, ids, "worklog", func(is *jira.Issue) ([][]any, error) {
			var page jira.WorklogPage
			raw := is.Fields["worklog"]
			if len(raw) == 0 || json.Unmarshal(raw, &page) != nil || page.Total > len(page.Worklogs) {
				// Not embedded, or not all of it: page the issue's own list.
				page.Worklogs = page.Worklogs[:0]
				err := pageAll(func(start int) (int, bool, error) {
					p, err := c.IssueWorklogs(ctx, is.ID, start, jira.MaxWorklogPage)
					page.Worklogs = append(page.Worklogs, p.Worklogs...)
					return len(p.Worklogs), start+len(p.Worklogs) >= p.Total, err
				})
				if err != nil {
					return nil, err
				}
			}
			issueID := atoi64(is.ID)
			rows := make([][]any, 0, len(page.Worklogs))
			for _, w := range page.Worklogs {
				if atoi64(w.ID) == nil {
					continue // Jira's ids are numbers; a row needs its key
				}
				rows = append(rows, []any{atoi64(w.ID), issueID, is.Key, displayName(w.Author), jiraTime(w.Started),
					w.TimeSpentSeconds, richText(w.Comment), jiraTime(w.Created), jiraTime(w.Updated)})
			}
			return rows, nil
		})
	},
}

// embeddedPerIssue reads a batch of issues with one field and turns each
// into its rows; rows[k] belongs to ids[k].
func embeddedPerIssue(ctx context.Context, c *jira.Client, ids []string, field string, rowsOf func(*jira.Issue) ([][]any, error)) ([][][]any, error) {
	issues, err := c.BulkFetch(ctx, ids, []string{"key", field})
	if err != nil {
		return nil, err
	}
	out := make([][][]any, len(ids))
	at := indexOf(ids, issues, func(is *jira.Issue) string { return is.ID })
	// The few issues whose list Jira embeds only in part are paged at
	// once, not one after another (the client paces the calls).
	err = parallel(ctx, len(issues), func(_ context.Context, k int) error {
		rows, err := rowsOf(&issues[k])
		out[at[k]] = rows
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// richText is an ADF document (or a plain string) as plain text; nil when
// there is none.
func richText(raw json.RawMessage) any {
	if s, ok := displayString(raw); ok {
		return s
	}
	return nil
}
