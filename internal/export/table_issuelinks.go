package export

import (
	"context"
	"encoding/json"

	"ferry/internal/jira"
)

// issueLinksTable: the links of the data source's issues, from their
// "issuelinks" field, one row per link per issue it shows on: a link
// between two issues of the source appears on both, once outward and once
// inward.
var issueLinksTable = &Table{
	Name: "IssueLinks", EntityType: "IssueLink", Key: "Id",
	Doc: "Links of each issue: link type, direction, linked issue.",
	Columns: []Column{
		col("Id", EdmString, true), issueIDCol(), col("IssueKey", EdmString, true),
		col("LinkId", EdmInt64, true), col("LinkType", EdmString, true), col("Direction", EdmString, true),
		col("Relation", EdmString, false), col("LinkedIssueId", EdmInt64, true), col("LinkedIssueKey", EdmString, true),
	},
	Refs: []Ref{
		{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "Links"},
		{Name: "LinkedIssue", Property: "LinkedIssueId", Target: TableIssues, ReferencedProperty: "Id"},
	},
	PerIssue: func(ctx context.Context, c *jira.Client, _ *DataSource, ids []string) ([][][]any, error) {
		return embeddedPerIssue(ctx, c, ids, "issuelinks", func(is *jira.Issue) ([][]any, error) { return issueLinkRows(is), nil })
	},
}

// issueLinkRows are the IssueLinks rows of one issue, from its
// "issuelinks" field; none when the field is not Jira's shape.
func issueLinkRows(is *jira.Issue) [][]any {
	var links []struct {
		ID   string `json:"id"`
		Type struct {
			Name    string `json:"name"`
			Inward  string `json:"inward"`
			Outward string `json:"outward"`
		} `json:"type"`
		InwardIssue, OutwardIssue *struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		}
	}
	if raw := is.Fields["issuelinks"]; len(raw) > 0 {
		if err := json.Unmarshal(raw, &links); err != nil {
			return nil // not Jira's shape: no links rather than wrong ones
		}
	}
	issueID := atoi64(is.ID)
	var rows [][]any
	for _, l := range links {
		dir, rel, other := "outward", l.Type.Outward, l.OutwardIssue
		if other == nil {
			dir, rel, other = "inward", l.Type.Inward, l.InwardIssue
		}
		if other == nil || atoi64(l.ID) == nil || atoi64(other.ID) == nil {
			continue // a link Jira always gives ids to; without them it cannot be a row
		}
		rows = append(rows, []any{is.ID + "-" + l.ID, issueID, is.Key, atoi64(l.ID), l.Type.Name, dir, orNull(rel), atoi64(other.ID), other.Key})
	}
	return rows
}
