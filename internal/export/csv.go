package export

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"ferry/internal/export/odata"
)

// CSV feeds: RFC 4180 (comma, CRLF between records, a field quoted when it
// holds a quote, comma, CR or LF or starts or ends with a space; quotes
// doubled), UTF-8. A value comes back byte for byte from any RFC 4180
// reader (Python's csv, pandas, DuckDB), except for two documented,
// reversible encodings:
//
//   - Multi-value cells: items joined by "; ", a backslash in an item
//     written "\\" and a semicolon "\;" (SplitMultiValue reverses it). An
//     empty list is an empty cell; Jira has no empty items.
//   - The formula guard of text cells (see GuardCell): an apostrophe before
//     any part that a spreadsheet could run as a formula.
//
// An empty string is written "" (quoted) and null as nothing, so readers
// that tell them apart (DuckDB) can.

// csvWriter streams rows as CSV in a stable column order: the order of the
// columns given. Only the row being written is held.
type csvWriter struct {
	w    io.Writer
	cols []Column
	buf  []byte
}

func newCSVWriter(out io.Writer, cols []Column, bom bool) (*csvWriter, error) {
	c := &csvWriter{w: out, cols: cols}
	if bom {
		// Excel reads UTF-8 CSV correctly only with a byte-order mark.
		c.buf = append(c.buf, "\uFEFF"...)
	}
	for i, col := range cols {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.buf = appendCSVField(c.buf, col.Name, false)
	}
	c.buf = append(c.buf, '\r', '\n')
	return c, c.flush()
}

func (c *csvWriter) writeValues(vals []any) error {
	for i, col := range c.cols {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		s, null := csvCell(col, vals[i])
		c.buf = appendCSVField(c.buf, s, null)
	}
	c.buf = append(c.buf, '\r', '\n')
	return c.flush()
}

func (c *csvWriter) flush() error {
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// appendCSVField appends one field, quoted when a reader could otherwise
// misread it. Every byte of s is kept: CR and LF inside a value stay as
// they are (inside quotes), never normalised.
func appendCSVField(b []byte, s string, null bool) []byte {
	if null {
		return b
	}
	if s != "" && !strings.ContainsAny(s, "\",\r\n") && s[0] != ' ' && s[len(s)-1] != ' ' {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// csvCell formats one value; null reports a null (an empty, unquoted field).
// Text is guarded against running as a formula (GuardCell); numbers, dates
// and date-times are written as OData writes them.
func csvCell(col Column, v any) (s string, null bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		if col.Edm == EdmString {
			return GuardCell(x), false
		}
		return x, false
	case []string:
		if len(x) == 0 {
			return "", true
		}
		return GuardCell(JoinMultiValue(x)), false
	case []int64:
		// Numbers need no escaping: joined by "; " as text lists are.
		if len(x) == 0 {
			return "", true
		}
		items := make([]string, len(x))
		for i, n := range x {
			items[i] = strconv.FormatInt(n, 10)
		}
		return JoinMultiValue(items), false
	case int64:
		return strconv.FormatInt(x, 10), false
	case json.Number:
		return x.String(), false
	case bool:
		return strconv.FormatBool(x), false
	case time.Time:
		// As in OData: UTC, milliseconds when there are any.
		return x.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano), false
	}
	return "", true
}

// formulaStart are the characters that make a spreadsheet cell a formula
// (or, for tab and CR, hide what follows), and the apostrophe itself so
// that the guard stays reversible.
const formulaStart = "=+-@\t\r'"

// GuardCell keeps a text cell from running as a formula in a spreadsheet
// (CSV injection). Every part a spreadsheet may see as a cell of its own —
// the value, and what follows each ";" or tab, where a spreadsheet set to
// split on them would start a new cell — gets an apostrophe before its
// first character (after any spaces) when that is =, +, -, @, tab, CR or an
// apostrophe. UnguardCell removes exactly those apostrophes.
func GuardCell(s string) string {
	if !strings.ContainsAny(s, formulaStart) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if start {
			if c == ' ' {
				b.WriteByte(c)
				continue
			}
			if strings.IndexByte(formulaStart, c) >= 0 {
				b.WriteByte('\'')
			}
			start = false
		}
		b.WriteByte(c)
		if c == ';' || c == '\t' {
			start = true
		}
	}
	return b.String()
}

// UnguardCell reverses GuardCell.
func UnguardCell(s string) string {
	var b strings.Builder
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if start {
			if c == ' ' {
				b.WriteByte(c)
				continue
			}
			start = false
			if c == '\'' {
				continue
			}
		}
		b.WriteByte(c)
		if c == ';' || c == '\t' {
			start = true
		}
	}
	return b.String()
}

// JoinMultiValue writes a multi-value cell: items joined by "; ", with "\"
// and ";" inside an item escaped as "\\" and "\;".
func JoinMultiValue(items []string) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteString("; ")
		}
		for j := 0; j < len(it); j++ {
			if it[j] == '\\' || it[j] == ';' {
				b.WriteByte('\\')
			}
			b.WriteByte(it[j])
		}
	}
	return b.String()
}

// SplitMultiValue reverses JoinMultiValue ("" is the empty list).
func SplitMultiValue(s string) []string {
	items := []string{}
	if s == "" {
		return items
	}
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == ';':
			items = append(items, cur.String())
			cur.Reset()
			if i+1 < len(s) && s[i+1] == ' ' {
				i++
			}
		default:
			cur.WriteByte(c)
		}
	}
	return append(items, cur.String())
}

// HandleCSV serves GET /export/{source}/{table}: issues.csv or the CSV of
// any table the source includes (worklogs.csv, changelog.csv, …),
// streamed from Jira to the client (with a BOM for Excel when ?bom=1).
// Headers go out once Jira has accepted the query, so a refusal before the
// first row is still a proper error.
func (f *Feeds) HandleCSV() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr, err := f.resolve(r)
		if err != nil {
			f.writeFeedError(w, r, err)
			return
		}
		table := strings.TrimSuffix(strings.ToLower(r.PathValue("table")), ".csv")
		t := tableNamed(table, true)
		if table != "issues" && (t == nil || !hasTable(fr.source, t.Name)) {
			offers := []string{}
			for _, name := range TableNames() {
				if hasTable(fr.source, name) {
					offers = append(offers, strings.ToLower(name)+".csv")
				}
			}
			f.writeFeedError(w, r, &odata.Error{Status: http.StatusNotFound, Code: odata.CodeNotFound,
				Message: "This data source has no " + strconv.Quote(r.PathValue("table")) + "; it offers " + joinAnd(offers) + "."})
			return
		}
		ctx, res := claim(r.Context(), fr)
		defer res.Done()
		jql := fr.source.JQL
		fetch := f.fetcher(fr.user)
		var cols []Column
		if t != nil {
			cols = t.Columns
		} else {
			_, cols = f.model(fr)
		}
		bw := bufio.NewWriterSize(w, 32<<10)
		var cw *csvWriter
		estimate := -1
		fetch.OnFirst = func() error {
			if estimate >= 0 {
				w.Header().Set("Ferry-Estimated-Rows", strconv.Itoa(estimate))
			}
			w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
			w.Header().Set("Content-Disposition", `attachment; filename="`+table+`.csv"`)
			w.Header().Set("Cache-Control", "no-store")
			var err error
			cw, err = newCSVWriter(bw, cols, r.URL.Query().Get("bom") == "1")
			return err
		}
		// claim runs once the walk is counted, before any row: the export is
		// refused now, with a clear message, if Jira's points quota cannot
		// carry it (quota.go).
		claim := func(n int, from Cursor, table string) error {
			if n < 0 {
				c, err := fr.user.ApproximateCount(ctx, boundedJQL(jql))
				if err != nil {
					return err
				}
				n = c
			}
			estimate = n
			return f.need(fr, res, from, table, n, n)
		}
		write := func(vals []any, _, _ Cursor) error { return cw.writeValues(vals) }
		switch {
		case t == nil:
			where, order := splitOrderBy(jql)
			zone, zerr := f.userZone(ctx, fr)
			if zerr != nil {
				f.writeFeedError(w, r, asUnavailable(zerr))
				return
			}
			wk := Walk{Where: where, Order: order, Fields: fieldIDs(cols), Cols: cols, Zone: zone}
			_, err = fetch.Rows(ctx, wk, Cursor{}, -1, func(n int, from Cursor) error {
				return claim(n, from, TableIssues)
			}, write)
		case t.Site != nil:
			_, err = siteRows(ctx, fetch, t, Cursor{}, write)
		default:
			if err = claim(-1, Cursor{}, t.Name); err == nil {
				p := &plan{set: t.entitySet(), jql: jql, src: &fr.source}
				_, err = f.rows(ctx, fetch, p, Cursor{}, -1, nil, write)
			}
		}
		if err != nil && cw == nil {
			f.writeFeedError(w, r, err)
			return
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			f.abort(r, err)
		}
	})
}
