package export

import (
	"bytes"
	"strconv"
	"strings"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
	"ferry/internal/jsonscan"
)

// How each kind of Jira field becomes columns. A field's kind comes from
// its schema in GET /rest/api/3/field (type, items, system, custom); most
// kinds are one column, some are several (time tracking, progress, SLAs,
// attachments), and a few are rows of their own or no data at all: those
// are listed in the field picker as not exportable, with the reason.

// FieldMapping is what Ferry makes of one Jira field.
type FieldMapping struct {
	// Columns the field becomes, in order; each Name is the suffix added to
	// the field's property name ("" for the field's own name).
	Columns []Column
	// Reason the field is not exportable; "" when it is.
	Reason string
	// Note tells the user what the columns hold when that is not plain
	// from the field (a count, names only, another table for the rest).
	Note string
}

// Exportable reports whether the field becomes at least one column.
func (m FieldMapping) Exportable() bool { return m.Reason == "" && len(m.Columns) > 0 }

// Reasons a field is not exportable, and notes on what is exported.
const (
	reasonWorklog     = "Work logs are rows of their own: add the Worklogs table to the data source."
	reasonIssueLinks  = "Issue links are rows of their own: add the IssueLinks table to the data source."
	reasonApprovals   = "Approvals are one decision per approver, not one value per issue; Ferry does not export them."
	reasonRestriction = "Issue restrictions are access settings, not issue data."
	reasonAssets      = "Assets objects arrive as ids only; their names live in the Assets API, which Ferry does not read."
	reasonObject      = "This field holds JSON of no fixed shape, so there is no column type to give it."
	reasonKey         = "Every row already has the issue's key and id: the Key and Id columns."
	reasonThumbnail   = "Images are pictures, not values; the Attachment field gives file names and sizes."

	noteComment     = "The number of comments; their texts are in the Comments table."
	noteAttachment  = "File names and sizes in bytes, in the same order; file contents are never read."
	noteTimeTrack   = "Original estimate, remaining estimate and time spent, in seconds."
	noteProgress    = "Time logged and total time in seconds, and the percentage done."
	noteSLA         = "Elapsed and remaining time in seconds of the current cycle (or the last completed one), and whether it breached."
	noteSprint      = "Sprint names; dates, states and boards are in the Sprints table."
	noteUser        = "Display names; email addresses are never exported."
	noteCascading   = "Written as \"parent / child\"."
	noteRichText    = "Rich text as plain text."
	noteDuration    = "Seconds (work ratio: percent, -1 without an estimate)."
	noteRequestType = "The request type's name."
)

// MapField decides how a Jira field is exported.
func MapField(f jira.Field) FieldMapping {
	var typ, items, system, custom string
	if f.Schema != nil {
		typ, items, system, custom = f.Schema.Type, f.Schema.Items, f.Schema.System, f.Schema.Custom
	}
	id := f.ID
	// A field that stays one column keeps what the generic mapping knows
	// of its JQL (clause, how far it folds, emptiness): only its value
	// and type differ.
	one := func(c Column, note string) FieldMapping {
		base := fieldColumn(f)
		base.Name, base.Edm, base.Collection, base.extract = c.Name, c.Edm, c.Collection, c.extract
		return FieldMapping{Columns: []Column{base}, Note: note}
	}
	switch {
	case id == "issuekey":
		return FieldMapping{Reason: reasonKey}
	case id == "thumbnail":
		return FieldMapping{Reason: reasonThumbnail}
	case system == "worklog" || items == "worklog":
		return FieldMapping{Reason: reasonWorklog}
	case items == "issuelinks" && system != "subtasks":
		return FieldMapping{Reason: reasonIssueLinks}
	case typ == "sd-approvals":
		return FieldMapping{Reason: reasonApprovals}
	case typ == "issuerestriction":
		return FieldMapping{Reason: reasonRestriction}
	case typ == "sd-asset" || items == "sd-asset":
		return FieldMapping{Reason: reasonAssets}
	case typ == "object":
		return FieldMapping{Reason: reasonObject}
	case typ == "comments-page":
		return one(intColumn(id, "Count", func(v []byte) (int64, bool) { return member(v, "total").int() }), noteComment)
	case typ == "timetracking":
		return FieldMapping{Note: noteTimeTrack, Columns: []Column{
			intColumn(id, "OriginalSeconds", func(v []byte) (int64, bool) { return member(v, "originalEstimateSeconds").int() }),
			intColumn(id, "RemainingSeconds", func(v []byte) (int64, bool) { return member(v, "remainingEstimateSeconds").int() }),
			intColumn(id, "SpentSeconds", func(v []byte) (int64, bool) { return member(v, "timeSpentSeconds").int() }),
		}}
	case typ == "progress":
		return FieldMapping{Note: noteProgress, Columns: []Column{
			intColumn(id, "Seconds", func(v []byte) (int64, bool) { return member(v, "progress").int() }),
			intColumn(id, "TotalSeconds", func(v []byte) (int64, bool) { return member(v, "total").int() }),
			intColumn(id, "Percent", func(v []byte) (int64, bool) { return member(v, "percent").int() }),
		}}
	case typ == "votes":
		return one(intColumn(id, "", func(v []byte) (int64, bool) { return member(v, "votes").int() }), "The number of votes.")
	case typ == "watches":
		return one(intColumn(id, "", func(v []byte) (int64, bool) { return member(v, "watchCount").int() }), "The number of watchers.")
	case typ == "sd-servicelevelagreement":
		return FieldMapping{Note: noteSLA, Columns: []Column{
			intColumn(id, "ElapsedSeconds", func(v []byte) (int64, bool) { return slaCycle(v).path("elapsedTime", "millis").seconds() }),
			intColumn(id, "RemainingSeconds", func(v []byte) (int64, bool) { return slaCycle(v).path("remainingTime", "millis").seconds() }),
			boolColumn(id, "Breached", func(v []byte) (bool, bool) { return slaCycle(v).path("breached").bool() }),
		}}
	case typ == "sd-feedback":
		return one(intColumn(id, "Rating", func(v []byte) (int64, bool) { return member(v, "rating").int() }), "The customer's rating, 1 to 5.")
	case typ == "sd-customerrequesttype":
		return one(textColumn(id, func(v []byte) (string, bool) { return member(v, "requestType").path("name").str() }), noteRequestType)
	case typ == "option-with-child":
		return one(textColumn(id, cascading), noteCascading)
	case typ == "user":
		return one(textColumn(id, userName), noteUser)
	case typ == "array" && items == "attachment":
		return FieldMapping{Note: noteAttachment, Columns: []Column{
			listColumn(id, "Names", func(it []byte) (string, bool) { return member(it, "filename").str() }),
			intListColumn(id, "Sizes", func(it []byte) (int64, bool) { return member(it, "size").int() }),
		}}
	case typ == "array" && items == "user":
		return one(listColumn(id, "", userName), noteUser)
	case typ == "array" && custom == "com.pyxis.greenhopper.jira:gh-sprint":
		return one(fieldColumn(f), noteSprint)
	case typ == "number" && durationFields[system]:
		// JQL reads these clauses as durations ("2h", "3d" of the site's
		// working day), not as the seconds Jira's answer holds, and the
		// work ratio's -1 has no JQL form: a filter on them is Ferry's.
		c := fieldColumn(f)
		c.JQL, c.Fold, c.Empty = "", odata.FoldNone, false
		return FieldMapping{Columns: []Column{c}, Note: noteDuration}
	case typ == "string" && (system == "description" || system == "environment" || custom == "com.atlassian.jira.plugin.system.customfieldtypes:textarea"):
		return one(fieldColumn(f), noteRichText)
	}
	return one(fieldColumn(f), "")
}

// durationFields are the system fields holding a time in seconds (and a
// work ratio in percent, -1 without an estimate), whose JQL clauses read
// values in other units.
var durationFields = map[string]bool{"timeoriginalestimate": true, "timeestimate": true, "timespent": true,
	"aggregatetimeoriginalestimate": true, "aggregatetimeestimate": true, "aggregatetimespent": true, "workratio": true}

// jsonValue is a raw JSON value, nil when absent or null.
type jsonValue []byte

func present(v []byte) jsonValue {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return v
}

// member is the value of key in the object v.
func member(v []byte, key string) jsonValue {
	var out []byte
	jsonscan.Object(v, func(k, val []byte) {
		if string(k) == key {
			out = val
		}
	})
	return present(out)
}

func (v jsonValue) path(keys ...string) jsonValue {
	for _, k := range keys {
		if v == nil {
			return nil
		}
		v = member(v, k)
	}
	return v
}

// int reads an integer; Jira writes counts and seconds as JSON integers.
func (v jsonValue) int() (int64, bool) {
	if v == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(v), 64)
		if ferr != nil {
			return 0, false
		}
		return int64(f), true
	}
	return n, true
}

// seconds reads milliseconds as whole seconds, rounded toward zero.
func (v jsonValue) seconds() (int64, bool) {
	ms, ok := v.int()
	return ms / 1000, ok
}

func (v jsonValue) bool() (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func (v jsonValue) str() (string, bool) {
	if v == nil {
		return "", false
	}
	return jsonscan.String(v)
}

// slaCycle is the cycle an SLA's columns describe: the ongoing one, or the
// last completed one when none is running.
func slaCycle(v []byte) jsonValue {
	if c := member(v, "ongoingCycle"); c != nil {
		return c
	}
	var last []byte
	jsonscan.Array(member(v, "completedCycles"), func(it []byte) bool {
		last = it
		return true
	})
	return present(last)
}

// cascading writes a cascading select as "parent / child".
func cascading(v []byte) (string, bool) {
	parent, ok := member(v, "value").str()
	if !ok {
		return "", false
	}
	if child, ok := member(v, "child").path("value").str(); ok {
		return parent + " / " + child, true
	}
	return parent, true
}

// userName is a user's display name and nothing else: never the email
// address Jira may send alongside it.
func userName(v []byte) (string, bool) {
	return member(v, "displayName").str()
}

// fieldValue is the raw value of the column's field, nil when null.
func fieldValue(is *jira.Issue, id string) []byte { return present(is.Fields[id]) }

func typed(id, suffix, edm string, extract func(is *jira.Issue) any) Column {
	return Column{Name: suffix, Edm: edm, FieldID: id, extract: extract}
}

// scalar is a column of one value read from the field's JSON: null when
// the field is, or when read finds no value in it.
func scalar[T any](id, suffix, edm string, read func(v []byte) (T, bool)) Column {
	return typed(id, suffix, edm, func(is *jira.Issue) any {
		if v := fieldValue(is, id); v != nil {
			if x, ok := read(v); ok {
				return x
			}
		}
		return nil
	})
}

func intColumn(id, suffix string, read func(v []byte) (int64, bool)) Column {
	return scalar(id, suffix, EdmInt64, read)
}

func boolColumn(id, suffix string, read func(v []byte) (bool, bool)) Column {
	return scalar(id, suffix, EdmBoolean, read)
}

func textColumn(id string, read func(v []byte) (string, bool)) Column {
	return scalar(id, "", EdmString, read)
}

// list is a collection column, one item per element of the field's
// array that read finds a value in; the empty list when there is none.
func list[T any](id, suffix, edm string, read func(it []byte) (T, bool)) Column {
	c := typed(id, suffix, edm, func(is *jira.Issue) any {
		out := []T{}
		jsonscan.Array(fieldValue(is, id), func(it []byte) bool {
			if x, ok := read(it); ok {
				out = append(out, x)
			}
			return true
		})
		return out
	})
	c.Collection = true
	return c
}

// listColumn is a collection of text; empty items are dropped as in
// fieldColumn (the CSV cell of an empty list must read back as one).
func listColumn(id, suffix string, read func(it []byte) (string, bool)) Column {
	return list(id, suffix, EdmString, func(it []byte) (string, bool) {
		s, ok := read(it)
		return s, ok && s != ""
	})
}

func intListColumn(id, suffix string, read func(it []byte) (int64, bool)) Column {
	return list(id, suffix, EdmInt64, read)
}

// fieldColumnJSON is one column a field becomes, as the field picker lists it.
type fieldColumnJSON struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Collection bool   `json:"collection"`
}

// fieldInfo is a field as the app API's field list gives it to the picker:
// its columns (the first one's type as the field's), or why it is not
// exportable.
func fieldInfo(f jira.Field) fieldJSON {
	m := MapField(f)
	out := fieldJSON{ID: f.ID, Name: f.Name, Custom: f.Custom, Exportable: m.Exportable(), Reason: m.Reason, Note: m.Note,
		Columns: []fieldColumnJSON{}}
	for _, c := range m.Columns {
		out.Columns = append(out.Columns, fieldColumnJSON{Name: PropertyName(f.Name) + c.Name, Type: strings.TrimPrefix(c.Edm, "Edm."), Collection: c.Collection})
	}
	if len(out.Columns) > 0 {
		out.Type, out.Collection = out.Columns[0].Type, out.Columns[0].Collection
	}
	return out
}
