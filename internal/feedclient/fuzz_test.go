package feedclient

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadRecord: on any input readRecord never panics, and whenever
// encoding/csv reads the first record, readRecord reads the same fields
// (encoding/csv turns CR LF inside quotes into LF; readRecord keeps it).
func FuzzReadRecord(f *testing.F) {
	for _, s := range []string{"a,b\r\n", "\"x\r\ny\",\"q\"\"q\"\r\n", ",,\n", "\"\"", "a", "\"open"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readRecord(bufio.NewReader(bytes.NewReader(b)))
		want, werr := csv.NewReader(bytes.NewReader(b)).Read()
		if werr != nil || err != nil || len(b) > 0 && (b[0] == '\n' || b[0] == '\r') {
			return // encoding/csv skips empty lines; a feed's record is never one
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d fields, encoding/csv reads %d", b, len(got), len(want))
		}
		for i := range got {
			if strings.ReplaceAll(got[i], "\r\n", "\n") != want[i] {
				t.Fatalf("%q: field %d = %q, encoding/csv reads %q", b, i, got[i], want[i])
			}
		}
	})
}

// FuzzODataRowToCSV: any row the server sends is written as CSV or refused
// with an error, never a panic.
func FuzzODataRowToCSV(f *testing.F) {
	f.Add([]byte(`{"Key":"A-1","Labels":["a;b","=c"],"Points":2.5,"Due":null}`))
	f.Add([]byte(`{"@odata.etag":"x","K":[1,{"a":2}]}`))
	f.Fuzz(func(t *testing.T, row []byte) {
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		c := &odataCSV{}
		if err := c.write(w, json.RawMessage(row)); err != nil {
			return
		}
		w.Flush()
	})
}
