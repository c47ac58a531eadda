package backup

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// rowsSink records what a dump holds.
type rowsSink struct {
	hdr    dumpHeader
	tables []dumpTable
	rows   [][]any
	stmts  []string
	ended  int
}

func (s *rowsSink) header(h dumpHeader) error { s.hdr = h; return nil }
func (s *rowsSink) table(t dumpTable) error   { s.tables = append(s.tables, t); return nil }
func (s *rowsSink) row(v []any) error         { s.rows = append(s.rows, v); return nil }
func (s *rowsSink) endTable(int64) error      { s.ended++; return nil }
func (s *rowsSink) post(p []string) error     { s.stmts = append(s.stmts, p...); return nil }

func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && y != nil && bytes.Equal(x, y)
	}
	return a == b
}

// TestDumpRoundTripsBoundaryValues writes every value kind at its edges and
// reads it back bit for bit: an empty blob stays a blob (not NULL), -0.0
// keeps its sign, NaN its payload, text its NUL bytes.
func TestDumpRoundTripsBoundaryValues(t *testing.T) {
	values := []any{nil, int64(0), int64(-1), int64(1), int64(63), int64(-64), int64(64), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.Float64frombits(0x7ff8000000000001), math.SmallestNonzeroFloat64, math.MaxFloat64,
		"", "\x00", "a\x00b", "€𝄞", strings.Repeat("x", 127), strings.Repeat("y", 128), strings.Repeat("z", 1<<20),
		[]byte{}, []byte{0}, bytes.Repeat([]byte{0xff}, 128), bytes.Repeat([]byte{1}, 1<<20+3)}
	var buf bytes.Buffer
	w, err := newDumpWriter(&buf, dumpHeader{Dialect: "sqlite", Kind: "main", UserVersion: -7, ApplicationID: math.MaxInt32})
	if err != nil {
		t.Fatal(err)
	}
	w.beginTable(dumpTable{Name: "v", SQL: "CREATE TABLE v (a)", Columns: []string{"a"}, Rowid: true})
	for i, v := range values {
		if err := w.row([]any{int64(i), v}); err != nil {
			t.Fatal(err)
		}
	}
	w.endTable()
	w.beginTable(dumpTable{Name: "empty", Columns: []string{"a", "b"}})
	w.endTable()
	w.post([]string{"CREATE INDEX i ON v (a)"})
	counts, err := w.close()
	if err != nil {
		t.Fatal(err)
	}
	s := &rowsSink{}
	got, err := readDump(bytes.NewReader(buf.Bytes()), s)
	if err != nil {
		t.Fatal(err)
	}
	if got["v"] != int64(len(values)) || got["empty"] != 0 || counts["v"] != got["v"] || len(got) != 2 {
		t.Fatalf("counts %v, written %v", got, counts)
	}
	if s.hdr.UserVersion != -7 || s.hdr.ApplicationID != math.MaxInt32 || len(s.stmts) != 1 || s.ended != 2 {
		t.Fatalf("header %+v, post %v", s.hdr, s.stmts)
	}
	for i, v := range values {
		if r := s.rows[i]; len(r) != 2 || r[0] != int64(i) || !sameValue(v, r[1]) {
			t.Errorf("value %d: wrote %#v, read %#v", i, v, r[1])
		}
	}
	// Every proper prefix is refused: a truncated dump never reads as whole.
	for _, n := range []int{0, 5, len(dumpMagic), len(dumpMagic) + 3, buf.Len() / 2, buf.Len() - 1} {
		if _, err := readDump(bytes.NewReader(buf.Bytes()[:n]), &rowsSink{}); !errors.Is(err, ErrDumpCorrupt) {
			t.Errorf("prefix of %d bytes: %v, want ErrDumpCorrupt", n, err)
		}
	}
	if _, err := readDump(bytes.NewReader(append(buf.Bytes(), 0)), &rowsSink{}); !errors.Is(err, ErrDumpCorrupt) {
		t.Errorf("trailing byte: %v, want ErrDumpCorrupt", err)
	}
}

func sampleDump(t testing.TB) []byte {
	var buf bytes.Buffer
	w, _ := newDumpWriter(&buf, dumpHeader{Dialect: "sqlite", Kind: "main"})
	w.beginTable(dumpTable{Name: "t", SQL: "CREATE TABLE t (a, b)", Columns: []string{"a", "b"}})
	w.row([]any{int64(1), "x"})
	w.row([]any{nil, []byte{1, 2}})
	w.row([]any{2.5, ""})
	w.endTable()
	w.post([]string{"CREATE INDEX i ON t (a)"})
	if _, err := w.close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzReadDump: the dump parser reads backup content, which comes from
// outside the process. It must never panic or over-allocate, and whatever
// it accepts must be self-consistent.
func FuzzReadDump(f *testing.F) {
	good := sampleDump(f)
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add([]byte(dumpMagic))
	f.Add(append([]byte(dumpMagic), 'H', 0xff, 0xff, 0xff, 0xff, 0x0f))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &rowsSink{}
		counts, err := readDump(bytes.NewReader(b), s)
		if err != nil {
			if !errors.Is(err, ErrDumpCorrupt) {
				t.Fatalf("error not marked as a corrupt dump: %v", err)
			}
			return
		}
		var total int64
		for _, n := range counts {
			total += n
		}
		if total != int64(len(s.rows)) || len(counts) != len(s.tables) || s.ended != len(s.tables) {
			t.Fatalf("accepted dump inconsistent: counts %v, %d rows, %d tables", counts, len(s.rows), len(s.tables))
		}
	})
}

// FuzzOpenEnvelope: manifests and drill records are read from the backup
// target. Only a payload signed by the backup key may be accepted.
func FuzzOpenEnvelope(f *testing.F) {
	k, err := newBackupKey(time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	k.ID = "kfuzz"
	m := Manifest{Format: "ferry-backup/1", ID: "20260101t000000z-abcdef", Dialect: "sqlite", Tables: map[string]int64{"t": 1}}
	sealed, err := seal(k, "manifest", m)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(bytes.Replace(sealed, []byte("manifest"), []byte("drill"), 1))
	f.Add([]byte(`{"type":"manifest","key_id":"kfuzz","payload":"e30=","signature":"AAAA"}`))
	f.Add([]byte(`{}`))
	pub := func(id string) (ed25519.PublicKey, error) {
		if id != "kfuzz" {
			return nil, errors.New("unknown key")
		}
		return k.public(), nil
	}
	f.Add([]byte(`{"format":"ferry-backup-key/1","id":"k1","recipient":"age1","identity_wrapped":"AA==","signing_public":"AA==","signing_wrapped":"AA==","created_at":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// identity/<id>.json records come from the target too: parsing one
		// must not panic, and unwrapping a parsed one with a KEK that never
		// wrapped it must fail.
		if rec, err := parseKeyRecord(b); err == nil {
			if _, err := rec.unwrap(refuseAll{}); err == nil {
				t.Fatal("a key record unwrapped without a KEK")
			}
		}
		var got Manifest
		if _, err := openEnvelope(b, "manifest", pub, &got); err != nil {
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("error not marked as a signature error: %v", err)
			}
			return
		}
		// Accepted: the signature must really cover what was decoded.
		var e envelope
		if err := strictJSON(b, &e); err != nil || !ed25519.Verify(k.public(), signedMessage("manifest", e.Payload), e.Signature) {
			t.Fatal("accepted an envelope whose signature does not verify")
		}
	})
}

// FuzzCheckName: object names come from listings of the target; a name that
// passes must never climb out of a directory target.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"manifests/20260101t000000z-abcdef.json", "../x", "a/../../b", "/etc/passwd", "a//b", ".partial/x", "A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckName(s) != nil {
			return
		}
		for _, seg := range strings.Split(s, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
				t.Fatalf("accepted %q", s)
			}
		}
		if strings.ContainsAny(s, "\\\x00") || strings.HasPrefix(s, "/") {
			t.Fatalf("accepted %q", s)
		}
	})
}

// refuseAll is a KEK that opens nothing.
type refuseAll struct{}

func (refuseAll) Encrypt(p, ad []byte) ([]byte, error) { return nil, errors.New("no") }
func (refuseAll) Decrypt(c, ad []byte) ([]byte, error) { return nil, errors.New("no") }
