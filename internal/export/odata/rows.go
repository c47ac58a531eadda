package odata

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
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
	media   Media
	set     EntitySet // full metadata: @odata.type and @odata.id of each row
	ns      string
	state   int // 0 nothing written, 1 header written, 2 in value array, 3 closed
	members int // top-level members written (for the comma)
	rows    int
	buf     []byte
	err     error
}

// NewRowWriter returns a writer for rows with the given columns
// (Query.Columns) and @odata.context (ContextURL). Nothing is written yet.
func NewRowWriter(w io.Writer, contextURL string, cols []Property) *RowWriter {
	return &RowWriter{w: w, context: contextURL, cols: cols, media: Media{Metadata: MetadataMinimal}}
}

// SetMedia sets the JSON flavour (see Negotiate) before anything is
// written. Full metadata names each row's type and id from set, whose type
// lives in namespace.
func (rw *RowWriter) SetMedia(m Media, set EntitySet, namespace string) {
	rw.media, rw.set, rw.ns = m, set, namespace
}

func (rw *RowWriter) header() {
	if rw.state == 0 {
		rw.buf = append(rw.buf, '{')
		if rw.media.Metadata != MetadataNone {
			rw.member("@odata.context")
			rw.buf = appendString(rw.buf, rw.context)
		}
		rw.state = 1
	}
}

// member starts a top-level member: a comma unless it is the first.
func (rw *RowWriter) member(name string) {
	if rw.members > 0 {
		rw.buf = append(rw.buf, ',')
	}
	rw.members++
	rw.buf = appendString(rw.buf, name)
	rw.buf = append(rw.buf, ':')
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
	rw.member("@odata.count")
	if rw.media.IEEE754 {
		rw.buf = append(rw.buf, '"')
		rw.buf = strconv.AppendInt(rw.buf, n, 10)
		rw.buf = append(rw.buf, '"')
	} else {
		rw.buf = strconv.AppendInt(rw.buf, n, 10)
	}
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
	prev, prevMembers := rw.state, rw.members // rw.buf is empty here: every call flushes
	rw.header()
	if rw.state == 1 {
		rw.member("value")
		rw.buf = append(rw.buf, '[')
		rw.state = 2
	} else {
		rw.buf = append(rw.buf, ',')
	}
	var err error
	if rw.buf, err = appendEntity(rw.buf, rw.cols, row, rw.media, rw.set, rw.ns, false); err != nil {
		// Drop the half-made row (and any opening written with it).
		rw.buf, rw.state, rw.members = rw.buf[:0], prev, prevMembers
		return err
	}
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
		rw.member("value")
		rw.buf = append(rw.buf, '[')
	}
	rw.buf = append(rw.buf, ']')
	if nextLink != "" {
		rw.member("@odata.nextLink")
		rw.buf = appendString(rw.buf, nextLink)
	}
	rw.buf = append(rw.buf, "}\n"...)
	rw.state = 3
	return rw.flush()
}

// WriteEntity writes one entity as a response of its own (a request by key,
// Issues('PROJ-1')): the properties at the top level, after the context
// URL (ContextURL with EntityContext).
func WriteEntity(w io.Writer, contextURL string, cols []Property, row Row, m Media, set EntitySet, namespace string) error {
	b := []byte{'{'}
	if m.Metadata != MetadataNone {
		b = append(b, `"@odata.context":`...)
		b = appendString(b, contextURL)
		b = append(b, ',')
	}
	b, err := appendEntity(b, cols, row, m, set, namespace, true)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// appendEntity appends one row as a JSON object, or (inline) only its
// members followed by '}', for an object the caller opened.
func appendEntity(b []byte, cols []Property, row Row, m Media, set EntitySet, namespace string, inline bool) ([]byte, error) {
	if !inline {
		b = append(b, '{')
	}
	first := true
	sep := func() {
		if !first {
			b = append(b, ',')
		}
		first = false
	}
	if m.Metadata == MetadataFull && set.Name != "" {
		sep()
		b = append(b, `"@odata.type":`...)
		b = appendString(b, "#"+namespace+"."+set.EntityType)
		if id, ok := EntityID(set, row); ok {
			b = append(b, `,"@odata.id":`...)
			b = appendString(b, id)
			b = append(b, `,"@odata.readLink":`...)
			b = appendString(b, id)
		}
	}
	for _, p := range cols {
		if m.Metadata == MetadataFull {
			if t := typeAnnotation(p); t != "" {
				sep()
				b = appendString(b, p.Name+"@odata.type")
				b = append(b, ':')
				b = appendString(b, t)
			}
		}
		sep()
		b = appendString(b, p.Name)
		b = append(b, ':')
		var err error
		if b, err = appendValueAs(b, p, row[p.Name], m.IEEE754); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// typeAnnotation is the odata.type full metadata writes for values whose
// type JSON cannot show: all but String and Boolean.
func typeAnnotation(p Property) string {
	name := strings.TrimPrefix(string(p.Type), "Edm.")
	if p.Collection {
		return "#Collection(" + name + ")"
	}
	switch p.Type {
	case EdmString, EdmBoolean:
		return ""
	}
	return "#" + name
}

// EntityID is the entity's id relative to the service root, as OData URLs
// name it: Issues('PROJ-1'), or Set(K1=…,K2=…) for a compound key.
func EntityID(set EntitySet, row Row) (string, bool) {
	var parts []string
	for _, k := range set.Key {
		p, ok := set.Property(k)
		if !ok {
			return "", false
		}
		var lit string
		switch v := row[k].(type) {
		case string:
			lit = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		default:
			n, ok := toInt64(v)
			if !ok || p.Type != EdmInt64 {
				return "", false
			}
			lit = strconv.FormatInt(n, 10)
		}
		lit = escapeValue(lit)
		if len(set.Key) > 1 {
			lit = k + "=" + lit
		}
		parts = append(parts, lit)
	}
	return set.Name + "(" + strings.Join(parts, ",") + ")", true
}

func appendValue(b []byte, p Property, v any) ([]byte, error) { return appendValueAs(b, p, v, false) }

// appendValueAs appends v; ieee writes Int64 and Decimal as JSON strings
// (IEEE754Compatible=true).
func appendValueAs(b []byte, p Property, v any, ieee bool) ([]byte, error) {
	if ieee && !p.Collection && v != nil && (p.Type == EdmInt64 || p.Type == EdmDecimal) {
		start := len(b)
		b, err := appendValueAs(b, p, v, false)
		if err != nil || string(b[start:]) == "null" {
			return b, err
		}
		num := string(b[start:])
		return append(append(append(b[:start], '"'), num...), '"'), nil
	}
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
			if b, err = appendValueAs(b, item, rv.Index(i).Interface(), ieee); err != nil {
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
