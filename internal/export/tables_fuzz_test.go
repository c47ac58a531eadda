package export

import (
	"encoding/json"
	"testing"

	"ferry/internal/jira"
)

// FuzzTableRowsFromJira feeds arbitrary answers to what turns Jira's issue
// fields and changelogs into table rows (IssueLinks, StatusHistory): never
// a panic, every row as wide as its table, and never a row without its key.
func FuzzTableRowsFromJira(f *testing.F) {
	f.Add([]byte(`[{"id":"10000","type":{"name":"Blocks","inward":"is blocked by","outward":"blocks"},"outwardIssue":{"id":"10002","key":"A-2"}}]`),
		[]byte(`"2024-01-02T10:00:00.000+0000"`), []byte(`{"name":"Done"}`),
		[]byte(`[{"id":"5","created":"2024-01-03T10:00:00.000+0000","items":[{"field":"status","fieldId":"status","fromString":"To Do","toString":"Done"}]}]`))
	f.Add([]byte(`[{"id":"x","inwardIssue":{}}]`), []byte(`"2024-13-02"`), []byte(`null`), []byte(`[{"created":"2023-01-01T00:00:00.000+0000","items":[{"field":"status"}]}]`))
	f.Add([]byte(`{}`), []byte(`1`), []byte(`"Done"`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, links, created, status, histories []byte) {
		is := &jira.Issue{ID: "10001", Key: "A-1", Fields: map[string]json.RawMessage{"issuelinks": links, "created": created, "status": status}}
		for _, r := range issueLinkRows(is) {
			if len(r) != len(issueLinksTable.Columns) || r[0] == nil || r[3] == nil || r[7] == nil {
				t.Fatalf("IssueLinks row %v", r)
			}
		}
		var hs []jira.ChangeGroup
		if json.Unmarshal(histories, &hs) != nil {
			return
		}
		for _, r := range statusIntervals(is, jira.IssueChangelog{IssueID: "10001", Histories: hs}, nil) {
			if len(r) != len(statusHistoryTable.Columns) || r[0] == nil || r[4] == nil {
				t.Fatalf("StatusHistory row %v", r)
			}
			if d, ok := r[6].(int64); ok && d < 0 {
				t.Fatalf("negative duration %v", r)
			}
		}
	})
}
