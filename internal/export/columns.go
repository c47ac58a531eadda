package export

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
	"ferry/internal/jsonscan"
)

// Edm types Ferry emits.
const (
	EdmString         = "Edm.String"
	EdmInt64          = "Edm.Int64"
	EdmDecimal        = "Edm.Decimal"
	EdmBoolean        = "Edm.Boolean"
	EdmDate           = "Edm.Date"
	EdmDateTimeOffset = "Edm.DateTimeOffset"
)

// Column is one output column: an OData property and a CSV header. Values
// are converted from Jira's JSON at the moment they are written and kept
// nowhere.
type Column struct {
	Name       string // OData property name and CSV header
	Edm        string
	Collection bool
	Sortable   bool   // $orderby allowed: created and updated, whose JQL order is OData's
	NotNull    bool   // never null in Jira (Key, Id, Summary, Status, Project, Issue Type, Created, Updated)
	JQL        string // JQL clause a $filter on it folds into, "" if none (then Ferry filters on the stream)
	Fold       odata.FoldKind
	Empty      bool   // JQL accepts IS EMPTY on the clause
	FieldID    string // Jira field this column reads ("" for Key/Id)
	extract    func(is *jira.Issue) any
}

// Value returns the column's value for an issue: string, int64, json.Number,
// bool, time.Time, a YYYY-MM-DD string for dates, []string, or nil.
func (c Column) Value(is *jira.Issue) any { return c.extract(is) }

// IssueColumns builds the Issues table's columns: Key and Id first, then the
// selected fields in the order chosen, each typed from Jira's field schema.
func IssueColumns(known []jira.Field, selected []string) []Column {
	cols := []Column{
		{Name: "Key", Edm: EdmString, NotNull: true, JQL: "key", Fold: odata.FoldKey, extract: func(is *jira.Issue) any { return is.Key }},
		{Name: "Id", Edm: EdmInt64, NotNull: true, JQL: "id", Fold: odata.FoldID, extract: func(is *jira.Issue) any {
			n, err := strconv.ParseInt(is.ID, 10, 64)
			if err != nil {
				return nil
			}
			return n
		}},
	}
	byID := map[string]jira.Field{}
	for _, f := range known {
		byID[f.ID] = f
	}
	used := map[string]bool{"key": true, "id": true}
	for _, id := range selected {
		f, ok := byID[id]
		if !ok {
			continue
		}
		c := fieldColumn(f)
		c.Name = uniqueName(PropertyName(f.Name), used)
		cols = append(cols, c)
		if f.ID == "issuetype" {
			// Jira's only native boolean: whether the issue is a sub-task.
			cols = append(cols, Column{Name: uniqueName("IsSubtask", used), Edm: EdmBoolean, FieldID: "issuetype",
				extract: func(is *jira.Issue) any {
					var v struct {
						Subtask *bool `json:"subtask"`
					}
					if json.Unmarshal(is.Fields["issuetype"], &v) != nil || v.Subtask == nil {
						return nil
					}
					return *v.Subtask
				}})
		}
	}
	return cols
}

// neverEmpty are the fields Jira always fills and whose JQL refuses
// IS EMPTY.
var neverEmpty = map[string]bool{"status": true, "project": true, "issuetype": true, "summary": true, "created": true, "updated": true}

func fieldColumn(f jira.Field) Column {
	id := f.ID
	c := Column{FieldID: id, Edm: EdmString}
	if len(f.ClauseNames) > 0 {
		c.JQL = f.ClauseNames[0]
	}
	c.Sortable = id == "created" || id == "updated"
	c.NotNull = neverEmpty[id]
	c.Empty = !c.NotNull
	typ := ""
	if f.Schema != nil {
		typ = f.Schema.Type
	}
	c.Fold = foldKind(typ)
	raw := func(is *jira.Issue) json.RawMessage {
		v := is.Fields[id]
		if len(v) == 0 || string(v) == "null" {
			return nil
		}
		return v
	}
	switch typ {
	case "number":
		c.Edm = EdmDecimal
		c.extract = func(is *jira.Issue) any {
			v := raw(is)
			if v == nil {
				return nil
			}
			return json.Number(strings.TrimSpace(string(v)))
		}
	case "date":
		c.Edm = EdmDate
		c.extract = func(is *jira.Issue) any {
			var s string
			if json.Unmarshal(raw(is), &s) != nil || len(s) < 10 {
				return nil
			}
			return s[:10]
		}
	case "datetime":
		c.Edm = EdmDateTimeOffset
		c.extract = func(is *jira.Issue) any {
			var s string
			if json.Unmarshal(raw(is), &s) != nil {
				return nil
			}
			t, err := ParseJiraTime(s)
			if err != nil {
				return nil
			}
			return t
		}
	case "array":
		c.Collection = true
		c.extract = func(is *jira.Issue) any {
			var items []json.RawMessage
			if json.Unmarshal(raw(is), &items) != nil {
				return []string{}
			}
			out := make([]string, 0, len(items))
			for _, it := range items {
				// Empty items are dropped: Jira has none, and the CSV
				// cell of an empty list must read back as one.
				if s, ok := displayString(it); ok && s != "" {
					out = append(out, s)
				}
			}
			return out
		}
	default:
		c.extract = func(is *jira.Issue) any {
			v := raw(is)
			if v == nil {
				return nil
			}
			if s, ok := displayString(v); ok {
				return s
			}
			return nil
		}
	}
	return c
}

// foldKind is how far JQL can search a field of a schema type exactly as
// OData compares its value (the display string Ferry writes).
func foldKind(schemaType string) odata.FoldKind {
	switch schemaType {
	case "number", "date":
		return odata.FoldExact
	case "datetime":
		return odata.FoldDateTime
	case "status", "project", "issuetype", "priority", "resolution", "option", "version", "securitylevel", "component":
		// Named values: JQL matches them case-insensitively and by id.
		return odata.FoldName
	case "user", "string":
		// JQL searches users by accountId and text by words; only
		// emptiness folds.
		return odata.FoldPresence
	}
	return odata.FoldNone
}

// displayString turns one Jira value into the text a BI user expects:
// strings as they are, objects by their display name, key, value or name,
// rich text (ADF) as plain text. Email addresses are never chosen.
func displayString(v json.RawMessage) (string, bool) {
	v = json.RawMessage(strings.TrimSpace(string(v)))
	if len(v) == 0 || string(v) == "null" {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	case '{':
		var display, value, name, key, typ []byte
		project := false
		ok := jsonscan.Object(v, func(k, val []byte) {
			switch string(k) {
			case "displayName":
				display = val
			case "value":
				value = val
			case "name":
				name = val
			case "key":
				key = val
			case "type":
				typ = val
			case "projectTypeKey":
				project = true
			}
		})
		if !ok {
			return "", false
		}
		pick := func(raw []byte) (string, bool) {
			if raw == nil {
				return "", false
			}
			return jsonscan.String(raw)
		}
		if t, _ := pick(typ); t == "doc" {
			return adfText(v), true
		}
		if project && key != nil {
			return pick(key) // projects by key: that is how BI users join and filter them
		}
		for _, raw := range [][]byte{display, value, name, key} {
			if s, ok := pick(raw); ok {
				return s, true
			}
		}
		return "", false
	default:
		return string(v), true // numbers and booleans, as Jira wrote them
	}
}

// adfText flattens an Atlassian Document Format tree to plain text, one
// line per block.
func adfText(v json.RawMessage) string {
	var node struct {
		Type    string            `json:"type"`
		Text    string            `json:"text"`
		Content []json.RawMessage `json:"content"`
	}
	if json.Unmarshal(v, &node) != nil {
		return ""
	}
	if node.Type == "text" {
		return node.Text
	}
	if node.Type == "hardBreak" {
		return "\n"
	}
	var b strings.Builder
	for _, c := range node.Content {
		b.WriteString(adfText(c))
	}
	switch node.Type {
	case "paragraph", "heading", "listItem", "codeBlock", "blockquote":
		b.WriteString("\n")
	}
	s := b.String()
	if node.Type == "doc" {
		s = strings.TrimRight(s, "\n")
	}
	return s
}

// ParseJiraTime reads Jira's "2024-06-24T19:24:50.000+0000".
func ParseJiraTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000-0700", time.RFC3339Nano, "2006-01-02T15:04:05-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &time.ParseError{Value: s, Message: ": not a Jira date-time"}
}

// PropertyName makes an OData SimpleIdentifier from a Jira field name:
// "Story Points" → "StoryPoints", "Go-Live" → "GoLive", "1st Reply" → "_1stReply".
func PropertyName(name string) string {
	var b strings.Builder
	up := true
	for _, r := range name {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_':
			if up {
				r = unicode.ToUpper(r)
			}
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	s := b.String()
	if s == "" {
		s = "Field"
	}
	if r := []rune(s)[0]; unicode.IsDigit(r) {
		s = "_" + s
	}
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}

func uniqueName(base string, used map[string]bool) string {
	name := base
	for i := 2; used[strings.ToLower(name)]; i++ {
		name = base + strconv.Itoa(i)
	}
	used[strings.ToLower(name)] = true
	return name
}

// ChangelogColumns are the Changelog table's fixed columns.
func ChangelogColumns() []Column {
	return []Column{
		{Name: "Id", Edm: EdmString, NotNull: true}, {Name: "IssueId", Edm: EdmInt64, NotNull: true, JQL: "id", Fold: odata.FoldID},
		{Name: "ChangeId", Edm: EdmInt64, NotNull: true}, {Name: "Created", Edm: EdmDateTimeOffset, NotNull: true}, {Name: "Author", Edm: EdmString},
		{Name: "Field", Edm: EdmString, NotNull: true}, {Name: "FieldId", Edm: EdmString}, {Name: "FromValue", Edm: EdmString},
		{Name: "FromString", Edm: EdmString}, {Name: "ToValue", Edm: EdmString}, {Name: "ToString", Edm: EdmString},
	}
}

// jsonString decodes a raw JSON string value.
func jsonString(v []byte) (string, bool) { return jsonscan.String(v) }
