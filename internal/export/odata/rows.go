package odata

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// Row is one entity: property name → value. Missing names are null.
// Accepted Go values per type (nil is null everywhere):
//
//	Edm.String          string
//	Edm.Int64           int, int8…int64, uint8…uint32
//	Edm.Decimal         the integer types, float64, float32 (finite), json.Number, *big.Rat
//	Edm.Boolean         bool
//	Edm.Date            time.Time (its calendar day), or a "2024-01-31" string
//	Edm.DateTimeOffset  time.Time (written in UTC, to the millisecond)
//	Collection(T)       []string, []int64, []any… of the item type; nil is []
type Row map[string]any

// RowWriter streams one page of an entity set as OData JSON:
//
//	{"@odata.context":"…",["@odata.count":n,]"value":[{…},{…}][,"@odata.nextLink":"…"]}
//
// Each row goes to the writer as soon as it is encoded; only one row is ever
// held. The count (known before the page) may be written before the first
// row; the nextLink (known after it) is given to Close. If fetching fails
// mid-page, do not call Close: abort the response (panic(http.ErrAbortHandler))
// so that the client sees a broken payload, not a short page.
type RowWriter struct {
	w       io.Writer
	context string
	cols    []Property
	state   int // 0 nothing written, 1 header written, 2 in value array, 3 closed
	rows    int
	buf     []byte
	err     error
}

// NewRowWriter returns a writer for rows with the given columns
// (Query.Columns) and @odata.context (ContextURL). Nothing is written yet.
func NewRowWriter(w io.Writer, contextURL string, cols []Property) *RowWriter {
	return &RowWriter{w: w, context: contextURL, cols: cols}
}

func (rw *RowWriter) header() {
	if rw.state == 0 {
		rw.buf = append(rw.buf, `{"@odata.context":`...)
		rw.buf = appendString(rw.buf, rw.context)
		rw.state = 1
	}
}

func (rw *RowWriter) flush() error {
	if rw.err == nil && len(rw.buf) > 0 {
		_, rw.err = rw.w.Write(rw.buf)
	}
	rw.buf = rw.buf[:0]
	return rw.err
}

// WriteCount writes @odata.count. It must come before the first row.
func (rw *RowWriter) WriteCount(n int64) error {
	if rw.state > 1 {
		return fmt.Errorf("odata: WriteCount after rows or Close")
	}
	rw.header()
	rw.buf = append(rw.buf, `,"@odata.count":`...)
	rw.buf = strconv.AppendInt(rw.buf, n, 10)
	return rw.flush()
}

// WriteRow encodes and writes one row. A value of the wrong Go type, or a
// null in a non-nullable property, is an error and nothing of the row is
// written: the caller must then abort the response.
func (rw *RowWriter) WriteRow(row Row) error {
	if rw.err != nil {
		return rw.err
	}
	if rw.state == 3 {
		return fmt.Errorf("odata: WriteRow after Close")
	}
	prev := rw.state // rw.buf is empty here: every call flushes
	rw.header()
	if rw.state == 1 {
		rw.buf = append(rw.buf, `,"value":[`...)
		rw.state = 2
	} else {
		rw.buf = append(rw.buf, ',')
	}
	rw.buf = append(rw.buf, '{')
	for i, p := range rw.cols {
		if i > 0 {
			rw.buf = append(rw.buf, ',')
		}
		rw.buf = appendString(rw.buf, p.Name)
		rw.buf = append(rw.buf, ':')
		var err error
		if rw.buf, err = appendValue(rw.buf, p, row[p.Name]); err != nil {
			// Drop the half-made row (and any opening written with it).
			rw.buf, rw.state = rw.buf[:0], prev
			return err
		}
	}
	rw.buf = append(rw.buf, '}')
	rw.rows++
	return rw.flush()
}

// Rows is the number of rows written so far.
func (rw *RowWriter) Rows() int { return rw.rows }

// Close ends the array and the object, adding @odata.nextLink unless it is
// "". An empty page is written as "value":[].
func (rw *RowWriter) Close(nextLink string) error {
	if rw.state == 3 {
		return rw.err
	}
	rw.header()
	if rw.state == 1 {
		rw.buf = append(rw.buf, `,"value":[`...)
	}
	rw.buf = append(rw.buf, ']')
	if nextLink != "" {
		rw.buf = append(rw.buf, `,"@odata.nextLink":`...)
		rw.buf = appendString(rw.buf, nextLink)
	}
	rw.buf = append(rw.buf, "}\n"...)
	rw.state = 3
	return rw.flush()
}

func appendValue(b []byte, p Property, v any) ([]byte, error) {
	if p.Collection {
		if v == nil {
			return append(b, "[]"...), nil
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			return b, fmt.Errorf("odata: %s: want a slice for %s, got %T", p.Name, typeName(p), v)
		}
		b = append(b, '[')
		item := Property{Name: p.Name, Type: p.Type}
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, item, rv.Index(i).Interface()); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	if v == nil {
		if !p.Nullable {
			return b, fmt.Errorf("odata: %s: null in a non-nullable property", p.Name)
		}
		return append(b, "null"...), nil
	}
	bad := func() ([]byte, error) { return b, fmt.Errorf("odata: %s: %T is not a valid %s", p.Name, v, p.Type) }
	switch p.Type {
	case EdmString:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return appendString(b, s), nil
	case EdmInt64:
		n, ok := toInt64(v)
		if !ok {
			return bad()
		}
		return strconv.AppendInt(b, n, 10), nil
	case EdmDecimal:
		if n, ok := toInt64(v); ok {
			return strconv.AppendInt(b, n, 10), nil
		}
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return bad()
			}
			return strconv.AppendFloat(b, x, 'f', -1, 64), nil
		case float32:
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return bad()
			}
			return strconv.AppendFloat(b, float64(x), 'f', -1, 32), nil
		case json.Number:
			if _, ok := new(big.Rat).SetString(string(x)); !ok || !json.Valid([]byte(x)) {
				return bad()
			}
			return append(b, x...), nil
		case *big.Rat:
			if x == nil {
				return append(b, "null"...), nil
			}
			return append(b, ratString(x)...), nil
		}
		return bad()
	case EdmBoolean:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		return strconv.AppendBool(b, x), nil
	case EdmDate:
		switch x := v.(type) {
		case time.Time:
			b = append(b, '"')
			b = x.AppendFormat(b, time.DateOnly)
			return append(b, '"'), nil
		case string:
			if _, err := time.Parse(time.DateOnly, x); err != nil {
				return bad()
			}
			return appendString(b, x), nil
		}
		return bad()
	case EdmDateTimeOffset:
		x, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		b = append(b, '"')
		// Precision="3" in $metadata: milliseconds at most, trailing zeros dropped.
		b = x.UTC().Truncate(time.Millisecond).AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), nil
	}
	return bad()
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	}
	return 0, false
}

// ratString writes r as an exact decimal when it has one, else to 18 places.
func ratString(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	if prec, exact := r.FloatPrec(); exact {
		return r.FloatString(prec)
	}
	return r.FloatString(18)
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028/U+2029 are escaped so the payload is also safe as JavaScript.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\ufffd"...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
