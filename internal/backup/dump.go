package backup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// The logical dump format carries SQLite backups and the key backups of both
// engines (the PostgreSQL main backup is pg_dump's own format). It is what
// age encrypts, so it never touches a disk in the clear.
//
//	"FERRYDUMP1\n"
//	record*: kind (1 byte) | payload length (uvarint) | payload
//	  'H' header (JSON), first
//	  'T' table (JSON: name, create SQL, columns), then its rows
//	  'R' row: value count (uvarint), then per value a tag and its bytes:
//	      0 NULL | 1 INTEGER (zig-zag varint) | 2 REAL (8 bytes, IEEE 754 big
//	      endian) | 3 TEXT (uvarint length, bytes) | 4 BLOB (uvarint length, bytes)
//	  'E' end of table: its row count (uvarint), checked against the rows read
//	  'S' statements to run after the data (indexes, triggers, views; JSON list)
//	  'Z' end of dump (JSON: rows per table), last; nothing may follow
//
// Values keep SQLite's storage classes exactly (an integer stays an integer,
// an empty blob stays an empty blob and is not confused with NULL), so a
// restore reproduces every table value for value. The end record makes a
// truncated stream an error even before age's own authentication would.
const dumpMagic = "FERRYDUMP1\n"

const (
	recHeader = 'H'
	recTable  = 'T'
	recRow    = 'R'
	recEnd    = 'E'
	recPost   = 'S'
	recFinal  = 'Z'
)

const (
	tagNull  = 0
	tagInt   = 1
	tagReal  = 2
	tagText  = 3
	tagBlob  = 4
	maxJSON  = 16 << 20
	maxValue = 1<<30 + 1<<20 // SQLite's default SQLITE_MAX_LENGTH is 1e9 bytes
)

// ErrDumpCorrupt: the dump stream is not a well-formed Ferry dump.
var ErrDumpCorrupt = errors.New("backup: dump is corrupt")

type dumpHeader struct {
	Format        string `json:"format"`  // "ferry-dump/1"
	Dialect       string `json:"dialect"` // sqlite | postgres
	Kind          string `json:"kind"`    // main | keys
	UserVersion   int64  `json:"user_version,omitempty"`
	ApplicationID int64  `json:"application_id,omitempty"`
}

type dumpTable struct {
	Name    string   `json:"name"`
	SQL     string   `json:"sql,omitempty"` // CREATE TABLE; empty for tables that exist already
	Columns []string `json:"columns"`
	// Rowid: each row starts with the table's rowid (SQLite tables whose
	// rowid is not one of the columns), so it is kept too.
	Rowid bool `json:"rowid,omitempty"`
}

type dumpFinal struct {
	Rows map[string]int64 `json:"rows"`
}

// dumpWriter writes a dump; it checks its own use (rows only inside a table).
type dumpWriter struct {
	w     *bufio.Writer
	buf   []byte
	table *dumpTable
	rows  int64
	final dumpFinal
}

func newDumpWriter(w io.Writer, h dumpHeader) (*dumpWriter, error) {
	d := &dumpWriter{w: bufio.NewWriterSize(w, 256<<10), final: dumpFinal{Rows: map[string]int64{}}}
	if _, err := d.w.WriteString(dumpMagic); err != nil {
		return nil, err
	}
	h.Format = "ferry-dump/1"
	return d, d.json(recHeader, h)
}

func (d *dumpWriter) record(kind byte, payload []byte) error {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = kind
	n := binary.PutUvarint(hdr[1:], uint64(len(payload)))
	if _, err := d.w.Write(hdr[:1+n]); err != nil {
		return err
	}
	_, err := d.w.Write(payload)
	return err
}

func (d *dumpWriter) json(kind byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return d.record(kind, b)
}

func (d *dumpWriter) beginTable(t dumpTable) error {
	if d.table != nil {
		return errors.New("dump: table inside table")
	}
	d.table, d.rows = &t, 0
	return d.json(recTable, t)
}

func (d *dumpWriter) row(vals []any) error {
	if d.table == nil {
		return errors.New("dump: row outside a table")
	}
	want := len(d.table.Columns)
	if d.table.Rowid {
		want++
	}
	if len(vals) != want {
		return fmt.Errorf("dump: %s: row has %d values, want %d", d.table.Name, len(vals), want)
	}
	b := binary.AppendUvarint(d.buf[:0], uint64(len(vals)))
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, tagNull)
		case int64:
			b = append(b, tagInt)
			b = binary.AppendVarint(b, x)
		case float64:
			b = append(b, tagReal)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
		case string:
			b = append(b, tagText)
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		case []byte:
			b = append(b, tagBlob)
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
		default:
			return fmt.Errorf("dump: %s: unsupported value type %T", d.table.Name, v)
		}
	}
	d.buf = b
	d.rows++
	return d.record(recRow, b)
}

func (d *dumpWriter) endTable() error {
	if d.table == nil {
		return errors.New("dump: end outside a table")
	}
	d.final.Rows[d.table.Name] = d.rows
	d.table = nil
	return d.record(recEnd, binary.AppendUvarint(nil, uint64(d.rows)))
}

func (d *dumpWriter) post(stmts []string) error { return d.json(recPost, stmts) }

// close writes the final record and flushes; the counts it returns are the
// rows written per table.
func (d *dumpWriter) close() (map[string]int64, error) {
	if d.table != nil {
		return nil, errors.New("dump: table left open")
	}
	if err := d.json(recFinal, d.final); err != nil {
		return nil, err
	}
	return d.final.Rows, d.w.Flush()
}

// dumpSink receives a dump as it is read.
type dumpSink interface {
	header(h dumpHeader) error
	table(t dumpTable) error
	row(vals []any) error
	endTable(rows int64) error
	post(stmts []string) error
}

// readDump reads a whole dump into sink and returns the rows per table. Any
// deviation from the format — bad magic, records out of order, a count that
// does not match, a truncated stream, trailing bytes — is ErrDumpCorrupt.
func readDump(r io.Reader, sink dumpSink) (map[string]int64, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(dumpMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != dumpMagic {
		return nil, fmt.Errorf("%w: not a Ferry dump", ErrDumpCorrupt)
	}
	var (
		buf     []byte
		seenHdr bool
		inTable *dumpTable
		rows    int64
		counts  = map[string]int64{}
	)
	for {
		kind, err := br.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: stream ends before its final record", ErrDumpCorrupt)
		}
		if err != nil {
			return nil, err
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, corrupt(err)
		}
		limit := uint64(maxJSON)
		if kind == recRow {
			limit = maxValue
		}
		if n > limit {
			return nil, fmt.Errorf("%w: record of %d bytes", ErrDumpCorrupt, n)
		}
		buf, err = readN(br, buf[:0], int(n))
		if err != nil {
			return nil, corrupt(err)
		}
		if !seenHdr && kind != recHeader {
			return nil, fmt.Errorf("%w: no header", ErrDumpCorrupt)
		}
		switch kind {
		case recHeader:
			if seenHdr {
				return nil, fmt.Errorf("%w: second header", ErrDumpCorrupt)
			}
			var h dumpHeader
			if err := strictJSON(buf, &h); err != nil || h.Format != "ferry-dump/1" {
				return nil, fmt.Errorf("%w: bad header", ErrDumpCorrupt)
			}
			seenHdr = true
			if err := sink.header(h); err != nil {
				return nil, err
			}
		case recTable:
			if inTable != nil {
				return nil, fmt.Errorf("%w: table %q not ended", ErrDumpCorrupt, inTable.Name)
			}
			var t dumpTable
			if err := strictJSON(buf, &t); err != nil || t.Name == "" || len(t.Columns) == 0 {
				return nil, fmt.Errorf("%w: bad table record", ErrDumpCorrupt)
			}
			if _, dup := counts[t.Name]; dup {
				return nil, fmt.Errorf("%w: table %q twice", ErrDumpCorrupt, t.Name)
			}
			inTable, rows = &t, 0
			if err := sink.table(t); err != nil {
				return nil, err
			}
		case recRow:
			if inTable == nil {
				return nil, fmt.Errorf("%w: row outside a table", ErrDumpCorrupt)
			}
			vals, err := decodeRow(buf)
			if err != nil {
				return nil, err
			}
			want := len(inTable.Columns)
			if inTable.Rowid {
				want++
			}
			if len(vals) != want {
				return nil, fmt.Errorf("%w: %s: row has %d values, want %d", ErrDumpCorrupt, inTable.Name, len(vals), want)
			}
			rows++
			if err := sink.row(vals); err != nil {
				return nil, err
			}
		case recEnd:
			if inTable == nil {
				return nil, fmt.Errorf("%w: end outside a table", ErrDumpCorrupt)
			}
			c, k := binary.Uvarint(buf)
			if k <= 0 || k != len(buf) || int64(c) != rows {
				return nil, fmt.Errorf("%w: %s: %d rows read, end record says otherwise", ErrDumpCorrupt, inTable.Name, rows)
			}
			counts[inTable.Name] = rows
			inTable = nil
			if err := sink.endTable(rows); err != nil {
				return nil, err
			}
		case recPost:
			if inTable != nil {
				return nil, fmt.Errorf("%w: statements inside a table", ErrDumpCorrupt)
			}
			var stmts []string
			if err := strictJSON(buf, &stmts); err != nil {
				return nil, fmt.Errorf("%w: bad statements record", ErrDumpCorrupt)
			}
			if err := sink.post(stmts); err != nil {
				return nil, err
			}
		case recFinal:
			if inTable != nil {
				return nil, fmt.Errorf("%w: table %q not ended", ErrDumpCorrupt, inTable.Name)
			}
			var f dumpFinal
			if err := strictJSON(buf, &f); err != nil || len(f.Rows) != len(counts) {
				return nil, fmt.Errorf("%w: bad final record", ErrDumpCorrupt)
			}
			for t, n := range f.Rows {
				if c, ok := counts[t]; !ok || c != n {
					return nil, fmt.Errorf("%w: final record disagrees on %q", ErrDumpCorrupt, t)
				}
			}
			if _, err := br.ReadByte(); err != io.EOF {
				return nil, fmt.Errorf("%w: data after the final record", ErrDumpCorrupt)
			}
			return counts, nil
		default:
			return nil, fmt.Errorf("%w: unknown record kind %#x", ErrDumpCorrupt, kind)
		}
	}
}

func corrupt(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: truncated", ErrDumpCorrupt)
	}
	return fmt.Errorf("%w: %v", ErrDumpCorrupt, err)
}

// readN reads exactly n bytes, growing buf as data arrives rather than
// trusting n up front (a corrupt length must not allocate a gigabyte).
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		chunk := min(n-len(buf), 1<<20)
		if cap(buf)-len(buf) < chunk {
			nb := make([]byte, len(buf), len(buf)+max(chunk, len(buf)))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func decodeRow(b []byte) ([]any, error) {
	cnt, k := binary.Uvarint(b)
	if k <= 0 || cnt > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad row", ErrDumpCorrupt)
	}
	b = b[k:]
	vals := make([]any, 0, cnt)
	for range cnt {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: row ends early", ErrDumpCorrupt)
		}
		tag := b[0]
		b = b[1:]
		switch tag {
		case tagNull:
			vals = append(vals, nil)
		case tagInt:
			v, k := binary.Varint(b)
			if k <= 0 {
				return nil, fmt.Errorf("%w: bad integer", ErrDumpCorrupt)
			}
			vals, b = append(vals, v), b[k:]
		case tagReal:
			if len(b) < 8 {
				return nil, fmt.Errorf("%w: bad real", ErrDumpCorrupt)
			}
			vals, b = append(vals, math.Float64frombits(binary.BigEndian.Uint64(b))), b[8:]
		case tagText, tagBlob:
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return nil, fmt.Errorf("%w: bad length", ErrDumpCorrupt)
			}
			p := b[k : k+int(n)]
			if tag == tagText {
				vals = append(vals, string(p))
			} else {
				vals = append(vals, append([]byte{}, p...)) // never nil: an empty blob is not NULL
			}
			b = b[k+int(n):]
		default:
			return nil, fmt.Errorf("%w: unknown value tag %d", ErrDumpCorrupt, tag)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes in row", ErrDumpCorrupt)
	}
	return vals, nil
}

// strictJSON decodes one JSON value and refuses unknown fields and trailing
// data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}
