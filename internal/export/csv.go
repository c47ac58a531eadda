package export

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// csvWriter streams rows as RFC 4180 CSV (CRLF line ends, quotes doubled),
// UTF-8, in a stable column order: the order of the columns given.
type csvWriter struct {
	w    *csv.Writer
	cols []Column
	rec  []string
}

func newCSVWriter(out io.Writer, cols []Column, bom bool) (*csvWriter, error) {
	if bom {
		// Excel reads UTF-8 CSV correctly only with a byte-order mark.
		if _, err := io.WriteString(out, "\uFEFF"); err != nil {
			return nil, err
		}
	}
	w := csv.NewWriter(out)
	w.UseCRLF = true
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Name
	}
	if err := w.Write(header); err != nil {
		return nil, err
	}
	return &csvWriter{w: w, cols: cols, rec: make([]string, len(cols))}, nil
}

func (c *csvWriter) writeValues(vals []any) error {
	for i, col := range c.cols {
		c.rec[i] = csvCell(col, vals[i])
	}
	return c.w.Write(c.rec)
}

func (c *csvWriter) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// csvCell formats one value. Text that a spreadsheet would run as a formula
// (=, +, -, @ at the start) is prefixed with an apostrophe, so an issue
// summary can never execute in the user's Excel (CSV injection).
func csvCell(col Column, v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		if col.Edm == EdmString {
			return neutralize(x)
		}
		return x
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = strings.ReplaceAll(s, ";", ",")
		}
		return neutralize(strings.Join(parts, "; "))
	case int64:
		return strconv.FormatInt(x, 10)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	default:
		return ""
	}
}

func neutralize(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
