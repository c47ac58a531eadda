package export

import (
	"bytes"
	"encoding/json"
	"math/big"
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
// bool, time.Time, a YYYY-MM-DD string for dates, []string, []int64, or nil.
func (c Column) Value(is *jira.Issue) any { return c.extract(is) }

// IssueColumns builds the Issues table's columns: Key and Id first, then the
// selected fields in the order chosen, each typed from Jira's field schema
// (MapField: some fields are several columns, some none).
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
		// A field becomes the columns MapField gives it, named after the
		// field; one that is not exportable adds none.
		for _, c := range MapField(f).Columns {
			c.Name = uniqueName(PropertyName(f.Name)+c.Name, used)
			cols = append(cols, c)
		}
		if f.ID == "issuetype" {
			// Jira's only native boolean: whether the issue is a sub-task.
			cols = append(cols, Column{Name: uniqueName("IsSubtask", used), Edm: EdmBoolean, FieldID: "issuetype",
				extract: func(is *jira.Issue) any {
					var sub any
					jsonscan.Object(is.Fields["issuetype"], func(k, v []byte) {
						if string(k) == "subtask" {
							switch string(v) {
							case "true":
								sub = true
							case "false":
								sub = false
							}
						}
					})
					return sub
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
	// Each value is read once, straight from the answer's bytes (jsonscan):
	// strings are unquoted where they lie, nothing is decoded twice.
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
			v := bytes.TrimSpace(raw(is))
			if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
				return nil // not a JSON number: no value rather than a broken feed
			}
			if bytes.ContainsAny(v, "eE") {
				// An exponent no decimal can hold (1E1000010) is no value either.
				if _, ok := new(big.Rat).SetString(string(v)); !ok {
					return nil
				}
			}
			return json.Number(v)
		}
	case "date":
		c.Edm = EdmDate
		c.extract = func(is *jira.Issue) any {
			s, ok := jsonscan.String(raw(is))
			if !ok || len(s) < 10 {
				return nil
			}
			if _, err := time.Parse(time.DateOnly, s[:10]); err != nil {
				return nil // not a date: no value rather than a broken feed
			}
			return s[:10]
		}
	case "datetime":
		c.Edm = EdmDateTimeOffset
		c.extract = func(is *jira.Issue) any {
			s, ok := jsonscan.String(raw(is))
			if !ok {
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
			out := []string{}
			v := raw(is)
			if v == nil {
				return out
			}
			if !jsonscan.Array(v, func(it []byte) bool {
				// Empty items are dropped: Jira has none, and the CSV
				// cell of an empty list must read back as one.
				if s, ok := displayString(it); ok && s != "" {
					out = append(out, s)
				}
				return true
			}) {
				return []string{}
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
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", false
	}
	switch v[0] {
	case '"':
		return jsonscan.String(v)
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
	var b strings.Builder
	if !writeADF(&b, v) {
		return ""
	}
	return strings.TrimRight(b.String(), "\n")
}

// writeADF writes one node's text; false if it is not a node.
func writeADF(b *strings.Builder, v []byte) bool {
	var typ, text, content, attrs []byte
	if !jsonscan.Object(v, func(k, val []byte) {
		switch string(k) {
		case "type":
			typ = val
		case "text":
			text = val
		case "content":
			content = val
		case "attrs":
			attrs = val
		}
	}) {
		return false
	}
	t, _ := jsonscan.String(typ)
	switch t {
	case "text":
		s, _ := jsonscan.String(text)
		b.WriteString(s)
		return true
	case "hardBreak":
		b.WriteByte('\n')
		return true
	case "mention", "status":
		// What Jira shows: "@Display Name", a status lozenge's text.
		s, _ := member(attrs, "text").str()
		b.WriteString(s)
		return true
	case "emoji":
		s, ok := member(attrs, "text").str()
		if !ok {
			s, _ = member(attrs, "shortName").str()
		}
		b.WriteString(s)
		return true
	case "inlineCard", "blockCard", "embedCard":
		s, _ := member(attrs, "url").str()
		b.WriteString(s)
		if t != "inlineCard" {
			b.WriteByte('\n')
		}
		return true
	case "date":
		// attrs.timestamp: milliseconds since the epoch, as a string.
		ts, _ := member(attrs, "timestamp").str()
		if ms, err := strconv.ParseInt(ts, 10, 64); err == nil {
			b.WriteString(time.UnixMilli(ms).UTC().Format(time.DateOnly))
		}
		return true
	}
	if content != nil {
		jsonscan.Array(content, func(item []byte) bool {
			writeADF(b, item)
			return true
		})
	}
	switch t {
	case "paragraph", "heading", "codeBlock", "blockquote", "rule", "tableRow":
		b.WriteByte('\n')
	case "listItem":
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
	}
	return true
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
