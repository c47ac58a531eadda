package reqlog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"ferry/internal/keys"
	"ferry/internal/staff"
	"ferry/internal/store"
)

var (
	// ErrNotFound: no entry with that id (never logged, or deleted by retention).
	ErrNotFound = errors.New("reqlog: no such entry")
	// ErrExpired: the entry's day is outside the retention window; its rows
	// are deleted and its day key destroyed.
	ErrExpired = errors.New("reqlog: entry is past the retention window: deleted and its day key destroyed")
	// ErrNoGrant: decrypting a request needs a break-glass grant for it.
	ErrNoGrant = errors.New("reqlog: decrypting a request needs a signed-in staff member's break-glass grant for it")
)

// MaxDays is the longest retention the statement allows.
const MaxDays = 60

// Entry is one logged request: metadata in the clear, request sealed.
type Entry struct {
	ID            string
	At            time.Time
	Route         string // route pattern, e.g. "GET /odata/{source}/Issues", never the raw path
	Method        string
	Status        int
	Duration      time.Duration
	BytesOut      int64
	ErrorCode     string // in the clear: a fixed code such as "invalid", never text
	TenantID      string
	UserPseudonym string // keys.Ring.Pseudonym, never a raw accountId
}

// Day is the UTC day that names the entry's log key.
func (e Entry) Day() string { return keys.Day(e.At) }

// Request is what is sealed under the day key: the request as received,
// minus secrets. There is deliberately no field for the response.
type Request struct {
	Method        string            `json:"method"`
	Path          string            `json:"path"`
	Query         string            `json:"query,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	Body          string            `json:"body,omitempty"`
	BodyBytes     int64             `json:"body_bytes"`             // bytes the handler read
	BodyTruncated bool              `json:"body_truncated"`         // Body holds only the first BodyCap bytes
	BodyOmitted   string            `json:"body_omitted,omitempty"` // why the body is not kept (error ingest)
	// Error is the message the client was given. It is sealed with the
	// request ("together with error information"), not kept in the clear:
	// messages can echo what the user sent or what Jira said about it.
	Error string `json:"error,omitempty"`
}

// record is an entry on its way to the database.
type record struct {
	Entry
	req Request

	// Raw copies taken on the request path, scrubbed by the writer.
	headers map[string]string
	body    []byte
	// flushed marks a Flush request rather than an entry.
	flushed chan struct{}
	// seq is the entry's place in the queue (for the window).
	seq uint64
}

// Store reads and writes the request log. Reads of sealed requests go
// through DecryptRequest, which demands an audited break-glass grant.
type Store struct {
	db   *store.DB
	keys *keys.Ring

	mu    sync.Mutex
	parts map[string]bool // PostgreSQL partitions known to exist
}

// NewStore returns the request log over db, sealing with ring's day keys.
func NewStore(db *store.DB, ring *keys.Ring) *Store {
	return &Store{db: db, keys: ring, parts: map[string]bool{}}
}

// NewID returns an entry id for a request at t: the compact UTC day, then
// the microsecond of the day (40 bits) and 88 random bits. The day in the id
// lets a lookup prune to one partition and lets an expired id be recognised
// as such after its row is gone; the time before the random part makes new
// ids sort after old ones, so the primary key index grows at its end instead
// of being rewritten all over (a request log under load writes thousands of
// entries a second).
func NewID(t time.Time) string {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	us := uint64(t.Sub(day) / time.Microsecond)
	var b [16]byte
	for i := 4; i >= 0; i-- {
		b[i] = byte(us)
		us >>= 8
	}
	rand.Read(b[5:])
	return t.Format("20060102") + "-" + hex.EncodeToString(b[:])
}

// dayOfID returns the YYYY-MM-DD day encoded in an entry id.
func dayOfID(id string) (string, bool) {
	if len(id) < 9 || id[8] != '-' {
		return "", false
	}
	t, err := time.Parse("20060102", id[:8])
	if err != nil {
		return "", false
	}
	return keys.Day(t), true
}

// requestAD binds a sealed request to its entry id and day, so a ciphertext
// copied onto another row or day does not open.
func requestAD(id, day string) []byte {
	return []byte("ferry/reqlog/request\x00" + id + "\x00" + day)
}

// insert seals and writes entries in one transaction. Entries whose day key
// is already destroyed are skipped and counted in expired.
func (s *Store) insert(ctx context.Context, recs []record) (written, expired int, err error) {
	type row struct {
		e  Entry
		ct []byte
	}
	rows := make([]row, 0, len(recs))
	for _, r := range recs {
		a, err := s.keys.DayKey(ctx, r.At)
		if errors.Is(err, keys.ErrDayKeyDestroyed) {
			expired++
			continue
		}
		if err != nil {
			return 0, expired, fmt.Errorf("day key: %w", err)
		}
		pt, err := json.Marshal(r.req)
		if err != nil {
			return 0, expired, err
		}
		ct, err := a.Encrypt(pt, requestAD(r.ID, r.Day()))
		if err != nil {
			return 0, expired, fmt.Errorf("seal request: %w", err)
		}
		rows = append(rows, row{r.Entry, ct})
	}
	if len(rows) == 0 {
		return 0, expired, nil
	}
	if s.db.Dialect == store.Postgres {
		for _, r := range rows {
			if err := s.ensurePartition(ctx, r.e.At); err != nil {
				return 0, expired, err
			}
		}
	}
	const insert = `INSERT INTO request_log (id, day, at, route, method, status, duration_us, bytes_out, error_code, tenant_id, user_pseudonym, request) VALUES `
	const cols = 12
	args := func(r row) []any {
		e := r.e
		return []any{e.ID, e.Day(), e.At.UTC(), e.Route, e.Method, e.Status, e.Duration.Microseconds(),
			e.BytesOut, e.ErrorCode, e.TenantID, e.UserPseudonym, r.ct}
	}
	// Multi-row inserts. SQLite binds named $N parameters in time quadratic
	// in their number and positional ? ones in linear time, so it gets ? and
	// one statement per 64 rows; PostgreSQL gets $N, one round trip per 100.
	per, param := 100, func(n int) string { return "$" + strconv.Itoa(n) }
	if s.db.Dialect == store.SQLite {
		per, param = 64, func(int) string { return "?" }
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		for chunk := range slices.Chunk(rows, per) {
			var q strings.Builder
			q.WriteString(insert)
			all := make([]any, 0, len(chunk)*cols)
			for i, r := range chunk {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteByte('(')
				for c := range cols {
					if c > 0 {
						q.WriteByte(',')
					}
					q.WriteString(param(i*cols + c + 1))
				}
				q.WriteByte(')')
				all = append(all, args(r)...)
			}
			if _, err := tx.ExecContext(ctx, q.String(), all...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, expired, fmt.Errorf("insert request log: %w", err)
	}
	return len(rows), expired, nil
}

const entryCols = `id, at, route, method, status, duration_us, bytes_out, error_code, tenant_id, user_pseudonym`

func scanEntry(sc interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var us int64
	err := sc.Scan(&e.ID, &e.At, &e.Route, &e.Method, &e.Status, &us, &e.BytesOut, &e.ErrorCode, &e.TenantID, &e.UserPseudonym)
	e.Duration = time.Duration(us) * time.Microsecond
	e.At = e.At.UTC()
	return e, err
}

// List returns a tenant's entries since a time, newest first, metadata only.
func (s *Store) List(ctx context.Context, tenantID string, since time.Time, limit int) ([]Entry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+entryCols+` FROM request_log
		WHERE tenant_id = $1 AND at >= $2 ORDER BY at DESC, id LIMIT $3`, tenantID, since.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("list request log: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get returns one entry's metadata. An id whose day is past the retention
// window of days gives ErrExpired; an unknown id ErrNotFound.
func (s *Store) Get(ctx context.Context, id string, days int) (Entry, error) {
	day, ok := dayOfID(id)
	if !ok {
		return Entry{}, fmt.Errorf("%w: %q is not an entry id", ErrNotFound, id)
	}
	e, err := scanEntry(s.db.SQL.QueryRowContext(ctx, `SELECT `+entryCols+` FROM request_log WHERE day = $1 AND id = $2`, day, id))
	if errors.Is(err, sql.ErrNoRows) {
		if day < keys.Day(Cutoff(s.db.Now(), days)) {
			return Entry{}, fmt.Errorf("%w (entry of %s)", ErrExpired, day)
		}
		return Entry{}, ErrNotFound
	}
	return e, err
}

// DecryptRequest opens a logged request. It demands a break-glass grant for
// this entry: staff.Store.BreakGlass records who, in which role, why and for
// which ticket in the audit trail before it hands one out, so every
// decryption leaves a trace and none happens without a signed-in staff
// member whose role allows it. A day whose key retention destroyed fails
// with ErrExpired (wrapping keys.ErrDayKeyDestroyed).
func (s *Store) DecryptRequest(ctx context.Context, g *staff.Grant, id string, days int) (Entry, Request, error) {
	if !g.Permits(staff.DecryptRequestLog, id) {
		return Entry{}, Request{}, ErrNoGrant
	}
	e, err := s.Get(ctx, id, days)
	if err != nil {
		return Entry{}, Request{}, err
	}
	var ct []byte
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT request FROM request_log WHERE day = $1 AND id = $2`, e.Day(), id).Scan(&ct); err != nil {
		return e, Request{}, fmt.Errorf("read request: %w", err)
	}
	req, err := s.open(ctx, e, ct)
	return e, req, err
}

// open decrypts a sealed request with the ring's current key for its day.
func (s *Store) open(ctx context.Context, e Entry, ct []byte) (Request, error) {
	a, err := s.keys.DayKey(ctx, e.At)
	if errors.Is(err, keys.ErrDayKeyDestroyed) {
		return Request{}, fmt.Errorf("%w (entry of %s): %w", ErrExpired, e.Day(), keys.ErrDayKeyDestroyed)
	}
	if err != nil {
		return Request{}, err
	}
	pt, err := a.Decrypt(ct, requestAD(e.ID, e.Day()))
	if err != nil {
		return Request{}, keys.ErrDecrypt
	}
	var req Request
	if err := json.Unmarshal(pt, &req); err != nil {
		return Request{}, fmt.Errorf("decode request: %w", err)
	}
	return req, nil
}
