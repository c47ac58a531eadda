package export

import (
	"context"
	"strconv"

	"ferry/internal/jira"
)

// changelogTable: one row per changed field of every change of the data
// source's issues (changelog/bulkfetch).
var changelogTable = &Table{
	Name: TableChangelog, EntityType: "ChangeItem", Key: "Id",
	Doc:     "One row per changed field of every change of the issues.",
	Columns: ChangelogColumns(),
	Refs:    []Ref{{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "Changes"}},
	PerIssue: func(ctx context.Context, c *jira.Client, _ *DataSource, ids []string) ([][][]any, error) {
		logs, err := changelogsOf(ctx, c, ids, nil)
		if err != nil {
			return nil, err
		}
		out := make([][][]any, len(ids))
		for k := range ids {
			out[k] = changelogRows(logs[k])
		}
		return out, nil
	},
}

// changelogsOf reads the histories of a batch of issues (all pages),
// limited to the given field ids when there are any; logs[k] is ids[k]'s.
func changelogsOf(ctx context.Context, c *jira.Client, ids, fieldIDs []string) ([]jira.IssueChangelog, error) {
	byIssue := map[string]*jira.IssueChangelog{}
	token := ""
	for {
		page, err := c.ChangelogsOf(ctx, ids, fieldIDs, token)
		if err != nil {
			return nil, err
		}
		for _, l := range page.Logs {
			if cur, ok := byIssue[l.IssueID]; ok {
				cur.Histories = append(cur.Histories, l.Histories...)
			} else {
				l := l
				byIssue[l.IssueID] = &l
			}
		}
		if page.NextPageToken == "" {
			break
		}
		token = page.NextPageToken
	}
	out := make([]jira.IssueChangelog, len(ids))
	for k, id := range ids {
		out[k] = jira.IssueChangelog{IssueID: id}
		if l, ok := byIssue[id]; ok {
			out[k] = *l
		}
	}
	return out, nil
}

// changelogRows are the Changelog rows of one issue: one per changed field.
func changelogRows(l jira.IssueChangelog) [][]any {
	issueID, _ := strconv.ParseInt(l.IssueID, 10, 64)
	var out [][]any
	for _, h := range l.Histories {
		changeID, _ := strconv.ParseInt(h.ID, 10, 64)
		var author any
		if h.Author != nil {
			author = h.Author.DisplayName
		}
		for i, it := range h.Items {
			out = append(out, []any{l.IssueID + "-" + h.ID + "-" + strconv.Itoa(i), issueID, changeID, jiraTime(h.Created), author,
				it.Field, it.FieldID, deref(it.From), deref(it.FromString), deref(it.To), deref(it.ToString)})
		}
	}
	return out
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
