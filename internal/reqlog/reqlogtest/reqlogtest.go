// Package reqlogtest holds test helpers for proving what Ferry never
// stores. AssertNoBytes is meant to be reused by every area whose promise is
// "this never reaches disk" (request replies, exported Jira content).
package reqlogtest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"ferry/internal/store"
)

// Encodings returns the forms in which needle could sit in stored bytes:
// plain, percent-escaped, hex (both cases), and base64 (standard and URL
// alphabets) at each of the three alignments a containing value could give it.
func Encodings(needle string) map[string][]byte {
	out := map[string][]byte{
		"plain":     []byte(needle),
		"urlescape": []byte(url.QueryEscape(needle)),
		"hex":       []byte(hex.EncodeToString([]byte(needle))),
		"HEX":       []byte(strings.ToUpper(hex.EncodeToString([]byte(needle)))),
	}
	for shift := range 3 {
		src := append(bytes.Repeat([]byte{0}, shift), needle...)
		for name, enc := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding} {
			s := enc.EncodeToString(src)
			// Drop characters that depend on the bytes before and after.
			lead := (shift*8 + 5) / 6
			if len(s)-lead-4 < 8 {
				continue
			}
			out[fmt.Sprintf("%s+%d", name, shift)] = []byte(s[lead : len(s)-4])
		}
	}
	return out
}

// AssertNoBytes fails t if needle, in any of its Encodings, appears in any
// row of any table of db or — on SQLite — anywhere in the database files,
// including the write-ahead log and any rollback journal.
func AssertNoBytes(t testing.TB, db *store.DB, needle string) {
	t.Helper()
	if len(needle) < 8 {
		t.Fatalf("AssertNoBytes: needle %q is too short to be a canary", needle)
	}
	encs := Encodings(needle)
	check := func(where string, b []byte) {
		for name, e := range encs {
			if bytes.Contains(b, e) {
				t.Errorf("%s contains the canary (%s)", where, name)
			}
		}
	}
	for _, table := range tables(t, db) {
		rows, err := db.SQL.Query(`SELECT * FROM ` + quoteIdent(table))
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				t.Fatalf("scan %s: %v", table, err)
			}
			for i, v := range vals {
				switch x := v.(type) {
				case []byte:
					check(table+"."+cols[i], x)
				case string:
					check(table+"."+cols[i], []byte(x))
				case nil:
				default:
					check(table+"."+cols[i], fmt.Append(nil, x))
				}
			}
		}
		rows.Close()
	}
	if db.Dialect == store.SQLite {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			b, err := os.ReadFile(db.Path + suffix)
			if err != nil {
				continue
			}
			check("file "+db.Path+suffix, b)
		}
	}
}

func tables(t testing.TB, db *store.DB) []string {
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if db.Dialect == store.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		t.Fatal("AssertNoBytes: no tables found")
	}
	return out
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
