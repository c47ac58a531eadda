package odata

import "time"

// A representative model: what the export package is expected to declare.
var issues = EntitySet{
	Name: "Issues", EntityType: "Issue", Key: []string{"Key"},
	Properties: []Property{
		{Name: "Key", Type: EdmString, Doc: "Issue key, e.g. PROJ-123"},
		{Name: "Id", Type: EdmInt64, Sortable: true},
		{Name: "Summary", Type: EdmString, Nullable: true},
		{Name: "Status", Type: EdmString, Nullable: true},
		{Name: "Project", Type: EdmString},
		{Name: "StoryPoints", Type: EdmDecimal, Nullable: true},
		{Name: "Flagged", Type: EdmBoolean, Nullable: true},
		{Name: "DueDate", Type: EdmDate, Nullable: true},
		{Name: "Created", Type: EdmDateTimeOffset, Sortable: true},
		{Name: "Updated", Type: EdmDateTimeOffset, Sortable: true},
		{Name: "Resolved", Type: EdmDateTimeOffset, Nullable: true, Sortable: true},
		{Name: "Labels", Type: EdmString, Collection: true},
		{Name: "Team", Type: EdmString, Nullable: true, Doc: `Custom field "Team" <cf[10010]> & co`},
	},
}

var changelog = EntitySet{
	Name: "Changelog", EntityType: "ChangelogItem", Key: []string{"IssueKey", "Id", "Field"},
	Properties: []Property{
		{Name: "IssueKey", Type: EdmString},
		{Name: "Id", Type: EdmInt64, Sortable: true},
		{Name: "Field", Type: EdmString},
		{Name: "From", Type: EdmString, Nullable: true},
		{Name: "To", Type: EdmString, Nullable: true},
		{Name: "Changed", Type: EdmDateTimeOffset, Sortable: true},
	},
}

var service = Service{Namespace: "Ferry", Sets: []EntitySet{issues, changelog}}

var worklogs = EntitySet{
	Name: "Worklogs", EntityType: "Worklog", Key: []string{"Id"},
	Properties: []Property{
		{Name: "Id", Type: EdmInt64},
		{Name: "IssueId", Type: EdmInt64},
		{Name: "Started", Type: EdmDateTimeOffset},
		{Name: "TimeSpentSeconds", Type: EdmInt64},
	},
}

// related is a model with relations: Worklogs → Issues (with the partner
// collection on Issue), Changelog → Issues (without).
var related = Service{Namespace: "Ferry", Sets: []EntitySet{issues, changelog, worklogs}, Relations: []Relation{
	{Name: "Issue", From: "Worklogs", Property: "IssueId", To: "Issues", ReferencedProperty: "Id", Partner: "Worklogs"},
	{Name: "Issue", From: "Changelog", Property: "Id", To: "Issues", ReferencedProperty: "Id"},
}}

var berlin, _ = time.LoadLocation("Europe/Berlin")

var fields = FieldMap{
	Zone: time.UTC,
	Fields: map[string]JQLField{
		"Key":         {Clause: "key", Kind: FoldKey},
		"Id":          {Clause: "id", Kind: FoldID},
		"Summary":     {Clause: "summary", Kind: FoldNone},
		"Status":      {Clause: "status", Kind: FoldName, Empty: true},
		"Project":     {Clause: "project", Kind: FoldName},
		"StoryPoints": {Clause: "cf[10016]", Kind: FoldExact, Empty: true},
		"DueDate":     {Clause: "duedate", Kind: FoldExact, Empty: true},
		"Created":     {Clause: "created", Kind: FoldDateTime},
		"Updated":     {Clause: "updated", Kind: FoldDateTime},
		"Resolved":    {Clause: "resolved", Kind: FoldDateTime, Empty: true},
		"Flagged":     {Clause: "Flagged", Kind: FoldNone},
		"Team":        {Clause: `Team "A"`, Kind: FoldName, Empty: true},
	},
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}
