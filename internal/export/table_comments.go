package export

import (
	"context"
	"encoding/json"

	"ferry/internal/jira"
)

// commentsTable: every comment of the data source's issues, its body as
// plain text. Read like Worklogs: the "comment" field of a hundred issues
// at a time, an issue's own pages only when Jira embeds part of its list.
var commentsTable = &Table{
	Name: "Comments", EntityType: "Comment", Key: "Id",
	Doc: "Comments on the issues: author, created, updated, text.",
	Columns: []Column{
		col("Id", EdmInt64, true), issueIDCol(), col("IssueKey", EdmString, true),
		col("Author", EdmString, false), boundedByUpdated("Created", true), boundedByUpdated("Updated", true),
		col("Body", EdmString, false),
	},
	Refs: []Ref{{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "Comments"}},
	PerIssue: func(ctx context.Context, c *jira.Client, _ *DataSource, ids []string) ([][][]any, error) {
		return embeddedPerIssue(ctx, c, ids, "comment", func(is *jira.Issue) ([][]any, error) {
			var page jira.CommentPage
			raw := is.Fields["comment"]
			if len(raw) == 0 || json.Unmarshal(raw, &page) != nil || page.Total > len(page.Comments) {
				page.Comments = page.Comments[:0]
				err := pageAll(func(start int) (int, bool, error) {
					p, err := c.IssueComments(ctx, is.ID, start, jira.MaxCommentPage)
					page.Comments = append(page.Comments, p.Comments...)
					return len(p.Comments), start+len(p.Comments) >= p.Total, err
				})
				if err != nil {
					return nil, err
				}
			}
			issueID := atoi64(is.ID)
			rows := make([][]any, 0, len(page.Comments))
			for _, c := range page.Comments {
				if atoi64(c.ID) == nil {
					continue // Jira's ids are numbers; a row needs its key
				}
				rows = append(rows, []any{atoi64(c.ID), issueID, is.Key, displayName(c.Author),
					jiraTime(c.Created), jiraTime(c.Updated), richText(c.Body)})
			}
			return rows, nil
		})
	},
}
