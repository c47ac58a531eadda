package export

import (
	"context"
	"strconv"
	"strings"
	"time"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// A Table is one entity set and CSV of a data source beyond Issues: its
// columns, its key, how it relates to the other tables, and how its rows
// are read from Jira. Adding a table is adding one file that declares it
// and a row in tableList; the OData and CSV writers know nothing of any
// table. Every row is read as the token's owner and passes straight to the
// client.
type Table struct {
	Name       string // entity set, CSV file name (lower case) and the data source's table name
	EntityType string
	Key        string
	Doc        string   // what the table is, as the data-source form says it
	Columns    []Column // row values come in this order
	// Refs are the table's many-to-one relations (navigation properties
	// with referential constraints in $metadata).
	Refs []Ref
	// Exactly one of PerIssue and Site reads the rows.
	//
	// PerIssue reads the rows of a batch of the data source's issues (at
	// most jira.MaxBulkFetch, in the JQL's order): rows[k] belongs to
	// ids[k] (none for an issue the user cannot see). Pages resume inside
	// an issue's rows by their index, so an issue's rows come in a stable
	// order. src is the data source being read (StatusHistory counts
	// working time in its calendar).
	PerIssue func(ctx context.Context, c *jira.Client, src *DataSource, ids []string) ([][][]any, error)
	// Site streams the whole table as the site shows it to the user (not
	// limited by the data source's JQL), in a stable order.
	Site func(ctx context.Context, c *jira.Client, emit func([]any) error) error
}

// Ref is a many-to-one relation: Property of this table holds the
// ReferencedProperty of a row of Target.
type Ref struct {
	Name               string // navigation property on this table, e.g. "Issue"
	Property           string // e.g. "IssueId"
	Target             string // entity set, e.g. "Issues"
	ReferencedProperty string // e.g. "Id"
	Partner            string // collection navigation property on Target, e.g. "Worklogs"
}

// tableList is every table a data source may include besides Issues, in
// the order $metadata and the data-source form list them.
var tableList = []*Table{
	changelogTable,
	worklogsTable,
	commentsTable,
	issueLinksTable,
	statusHistoryTable,
	projectsTable,
	versionsTable,
	componentsTable,
	usersTable,
	sprintsTable,
	sprintIssuesTable,
}

// tableNamed finds a table by its name, or by its CSV name when csv.
func tableNamed(name string, csv bool) *Table {
	for _, t := range tableList {
		if t.Name == name || csv && strings.EqualFold(t.Name, name) {
			return t
		}
	}
	return nil
}

// TableNames lists the tables a data source may include, Issues first.
func TableNames() []string {
	out := []string{TableIssues}
	for _, t := range tableList {
		out = append(out, t.Name)
	}
	return out
}

// entitySetOf is the table's entity set.
func (t *Table) entitySet() odata.EntitySet {
	return entitySet(t.Name, t.EntityType, t.Key, t.Columns)
}

// The helpers below turn Jira's JSON into column values.

// col declares a fixed column.
func col(name, edm string, notNull bool) Column {
	return Column{Name: name, Edm: edm, NotNull: notNull}
}

// issueIDCol is the column that holds the issue a row belongs to; a
// $filter on it folds into JQL as the issue id.
func issueIDCol() Column {
	return Column{Name: "IssueId", Edm: EdmInt64, NotNull: true, JQL: "id", Fold: odata.FoldID}
}

// boundedByUpdated is a date-time column of a row inside an issue (a
// comment, a worklog, a status change) whose value is never later than
// the issue's Updated: Jira updates an issue when one of them is added or
// changed. A $filter "ge"/"gt"/"eq" on it narrows the JQL to issues
// updated since (Power BI's incremental refresh), and the rows are then
// matched exactly on the stream.
func boundedByUpdated(name string, notNull bool) Column {
	return Column{Name: name, Edm: EdmDateTimeOffset, NotNull: notNull, JQL: "updated", Fold: odata.FoldBoundedBy}
}

func atoi64(s string) any {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return n
}

func jiraTime(s string) any {
	if s == "" {
		return nil
	}
	t, err := ParseJiraTime(s)
	if err != nil {
		return nil
	}
	return t
}

func jiraDate(s string) any {
	if len(s) < 10 {
		return nil
	}
	if _, err := time.Parse("2006-01-02", s[:10]); err != nil {
		return nil
	}
	return s[:10]
}

func displayName(p *jira.Person) any {
	if p == nil || p.DisplayName == "" {
		return nil
	}
	return p.DisplayName
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// pageAll reads every page of a startAt-paged list: next reads one page
// and says how many items it held and whether it was the last.
func pageAll(next func(startAt int) (n int, last bool, err error)) error {
	for start := 0; ; {
		n, last, err := next(start)
		if err != nil {
			return err
		}
		start += n
		if last || n == 0 {
			return nil
		}
	}
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }
