package backup

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"ferry/internal/keys"
	"ferry/internal/store"
)

// Options configures a Service.
type Options struct {
	DB          *store.DB
	DatabaseURL string       // PostgreSQL: for pg_dump, pg_restore and drill databases
	KEK         Wrapper      // seals the backup key: the key ring's KEK (keys.Ring.KEK)
	Keys        keys.Options // where the KEK versions live, to open a drilled database's keys
	Target      Target
	Region      string          // FERRY_REGION: an S3 bucket must be in it
	Recipients  []age.Recipient // operators' offline recipients (FERRY_BACKUP_RECIPIENTS)
	WorkDir     string          // drill databases (SQLite) and downloaded ciphertext
	Every       time.Duration   // FERRY_BACKUP_EVERY, at most a day
	Retention   Retention
	Log         *slog.Logger
	Version     string // Ferry's version, recorded in manifests
}

// Retention says which backups are kept.
type Retention struct {
	Daily, Weekly, Monthly int // newest backup of each of the N most recent days, ISO weeks, months that have one
	KeyDays                int // key backups (tenant_keys, log_day_keys) older than this are deleted
}

// DefaultRetention keeps 14 daily, 8 weekly and 12 monthly backups, and key
// backups for 7 days.
func DefaultRetention() Retention { return Retention{Daily: 14, Weekly: 8, Monthly: 12, KeyDays: 7} }

// MaxEvery is the longest interval between backups: the statement promises
// at least one a day.
const MaxEvery = 24 * time.Hour

// orphanGrace is how long objects of an unfinished backup, and abandoned
// partial uploads, are left alone before they are removed: long enough that
// a backup still running elsewhere is never swept from under it.
const orphanGrace = 24 * time.Hour

// interruptedAfter is when a run still marked running is taken to have died.
const interruptedAfter = 2 * time.Hour

// Service makes, checks, lists, expires and restores backups.
type Service struct {
	o    Options
	keys keyStore

	mu     sync.Mutex
	opened map[string]*backupKey // backup keys unwrapped so far, by id
}

// New returns a Service. It touches nothing until used.
func New(o Options) (*Service, error) {
	switch {
	case o.DB == nil || o.Target == nil || o.KEK == nil:
		return nil, errors.New("backup: DB, Target and KEK are required")
	case o.DB.Dialect == store.Postgres && o.DatabaseURL == "":
		return nil, errors.New("backup: PostgreSQL needs DatabaseURL for pg_dump")
	case o.Every <= 0 || o.Every > MaxEvery:
		return nil, fmt.Errorf("backup: interval %s is not in (0, %s]", o.Every, MaxEvery)
	case o.WorkDir == "":
		return nil, errors.New("backup: WorkDir is required")
	}
	if o.Retention == (Retention{}) {
		o.Retention = DefaultRetention()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{o: o, keys: keyStore{db: o.DB, kek: o.KEK}, opened: map[string]*backupKey{}}
	current.Store(s)
	return s, nil
}

// Target returns the backup target, for other areas that keep their own
// objects beside the backups.
func (s *Service) Target() Target { return s.o.Target }

func (s *Service) now() time.Time { return s.o.DB.Now() }

// newID names a backup by its UTC start time (so names sort by age) and a
// random suffix (so two servers never collide).
func newID(t time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return t.UTC().Format("20060102t150405z") + "-" + hex.EncodeToString(b)
}

func idTime(id string) (time.Time, bool) {
	stem, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102t150405z", stem)
	return t, err == nil
}

// RunResult is what one scheduled run did.
type RunResult struct {
	Manifest Manifest
	Drill    DrillResult
	Expired  ExpireResult
}

// Run makes a backup, drills it and applies retention. A failed drill is an
// error: the backup exists but is not counted as good.
func (s *Service) Run(ctx context.Context) (RunResult, error) {
	var res RunResult
	m, err := s.Backup(ctx)
	if err != nil {
		runsTotal.WithLabelValues("failed").Inc()
		return res, err
	}
	res.Manifest = m
	d, err := s.Drill(ctx, m.ID)
	res.Drill = d
	if err == nil && !d.OK {
		err = fmt.Errorf("backup %s: restore drill failed: %s", m.ID, d.Error)
	}
	if err != nil {
		runsTotal.WithLabelValues("drill_failed").Inc()
	} else {
		runsTotal.WithLabelValues("ok").Inc()
	}
	x, xerr := s.Expire(ctx)
	res.Expired = x
	if xerr != nil {
		xerr = fmt.Errorf("backup retention: %w", xerr)
	}
	return res, errors.Join(err, xerr)
}

// RunIfDue runs unless a backup completed less than Every ago. The job
// checks often and backs up only when due, so restarts and deploys can
// never push the next backup past a day.
func (s *Service) RunIfDue(ctx context.Context) (ran bool, err error) {
	s.markInterrupted(ctx)
	last, ok, err := s.lastCompleted(ctx)
	if err != nil {
		return false, err
	}
	if ok && s.now().Sub(last) < s.o.Every-CheckInterval(s.o.Every) {
		return false, nil
	}
	_, err = s.Run(ctx)
	return true, err
}

// CheckInterval is how often the job looks whether a backup is due.
func CheckInterval(every time.Duration) time.Duration {
	return max(time.Minute, min(15*time.Minute, every/4))
}

// Backup takes a consistent snapshot and stores it, encrypted, as a data
// object and a key object, then the signed manifest naming both.
func (s *Service) Backup(ctx context.Context) (m Manifest, err error) {
	// The run is recorded first, so that every failure — a bucket in the
	// wrong region, a wrong secret — shows in backup_runs.
	start := s.now()
	id := newID(start)
	if err := s.startRun(ctx, id, start); err != nil {
		return m, err
	}
	defer func() {
		if err != nil {
			s.finishRun(context.WithoutCancel(ctx), id, "failed", err, 0)
			forgetStatus()
		}
	}()
	if rc, ok := s.o.Target.(regionChecker); ok {
		if err := rc.CheckRegion(ctx, s.o.Region); err != nil {
			return m, err
		}
	}
	k, err := s.keys.current(ctx)
	if err != nil {
		return m, err
	}
	if _, err := s.storeKey(ctx, k, s.o.KEK); err != nil {
		return m, err
	}

	recipients := append([]age.Recipient{k.Identity.Recipient()}, s.o.Recipients...)
	m = Manifest{Format: "ferry-backup/1", ID: id, CreatedAt: start, FerryVersion: s.o.Version,
		Dialect: string(s.o.DB.Dialect), KeyID: k.ID}
	for _, r := range recipients {
		m.Recipients = append(m.Recipients, fmt.Sprint(r))
	}

	// The key tables are small: their ciphertext is held in memory and
	// stored after the data object. The data streams: snapshot → age →
	// target, and only ciphertext ever leaves this process.
	var keysBuf bytes.Buffer
	keysEnc, err := age.Encrypt(&keysBuf, recipients...)
	if err != nil {
		return m, fmt.Errorf("encrypt: %w", err)
	}
	pr, pw := io.Pipe()
	type snapOut struct {
		info        snapshotInfo
		plain, keys int64
		err         error
	}
	done := make(chan snapOut, 1)
	go func() {
		var out snapOut
		defer func() { done <- out }()
		enc, err := age.Encrypt(pw, recipients...)
		if err != nil {
			out.err = err
			pw.CloseWithError(err)
			return
		}
		dc, kc := &countWriter{w: enc}, &countWriter{w: keysEnc}
		out.info, out.err = s.snapshot(ctx, dc, kc)
		if out.err == nil {
			out.err = enc.Close()
		}
		if out.err == nil {
			out.err = keysEnc.Close()
		}
		out.plain, out.keys = dc.n, kc.n
		pw.CloseWithError(out.err) // nil: the reader sees EOF
	}()
	dataName := dataObject(id, m.Dialect)
	obj, perr := s.o.Target.Put(ctx, dataName, pr)
	pr.CloseWithError(errors.New("upload ended")) // unblocks the snapshot if the upload failed
	snap := <-done
	if snap.err != nil {
		return m, fmt.Errorf("snapshot: %w", snap.err)
	}
	if perr != nil {
		return m, perr
	}
	kobj, err := s.o.Target.Put(ctx, keysObject(id), bytes.NewReader(keysBuf.Bytes()))
	if err != nil {
		return m, err
	}
	format := "ferry-dump/1"
	if m.Dialect == "postgres" {
		format = "pg_dump-custom"
	}
	m.SchemaVersion, m.Tables, m.KeyTables = snap.info.SchemaVersion, snap.info.Tables, snap.info.KeyTables
	m.Data = Part{Name: dataName, Format: format, Size: obj.Size, SHA256: obj.SHA256, PlainBytes: snap.plain}
	m.Keys = Part{Name: kobj.Name, Format: "ferry-dump/1", Size: kobj.Size, SHA256: kobj.SHA256, PlainBytes: snap.keys}
	sealed, err := seal(k, "manifest", m)
	if err != nil {
		return m, err
	}
	// The manifest is the commit point: until it exists the backup is not
	// listed as one, whatever else was stored.
	if _, err := s.o.Target.Put(ctx, manifestObject(id), bytes.NewReader(sealed)); err != nil {
		return m, err
	}
	s.finishRun(ctx, id, "complete", nil, obj.Size+kobj.Size)
	forgetStatus()
	s.o.Log.Info("backup stored", "id", id, "bytes", obj.Size+kobj.Size, "target", s.o.Target.String())
	return m, nil
}

// storeKey wraps k under kek's primary version and stores it in the
// database and beside the backups, where a new server after a disaster
// finds it: with the same KEK it can open the identity and read them.
func (s *Service) storeKey(ctx context.Context, k *backupKey, kek Wrapper) (keyRecord, error) {
	rec, err := s.keys.rewrap(ctx, k, kek)
	if err != nil {
		return rec, fmt.Errorf("wrap backup key: %w", err)
	}
	kb, err := marshalKeyRecord(rec.portable())
	if err != nil {
		return rec, err
	}
	if _, err := s.o.Target.Put(ctx, identityObject(k.ID), bytes.NewReader(kb)); err != nil {
		return rec, fmt.Errorf("store backup key: %w", err)
	}
	s.remember(k)
	return rec, nil
}

func (s *Service) snapshot(ctx context.Context, data, keys io.Writer) (snapshotInfo, error) {
	if s.o.DB.Dialect == store.Postgres {
		return pgSnapshot(ctx, s.o.DB.Pool, s.o.DatabaseURL, data, keys)
	}
	return sqliteSnapshot(ctx, s.o.DB.SQL, data, keys)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// remember caches an unwrapped backup key.
func (s *Service) remember(k *backupKey) {
	s.mu.Lock()
	s.opened[k.ID] = k
	s.mu.Unlock()
}

// backupKey opens the backup key id: from the database, or — on a server
// rebuilt after a disaster — from the copy beside the backups. Either way
// only the KEK can open it.
func (s *Service) backupKey(ctx context.Context, id string) (*backupKey, error) {
	s.mu.Lock()
	k, ok := s.opened[id]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	rec, err := s.keys.load(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		rec, err = s.keyFromTarget(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	k, err = rec.unwrap(s.o.KEK)
	if err != nil {
		return nil, err
	}
	s.remember(k)
	return k, nil
}

func (s *Service) keyFromTarget(ctx context.Context, id string) (keyRecord, error) {
	if CheckName(identityObject(id)) != nil {
		return keyRecord{}, fmt.Errorf("backup key %q: bad id", id)
	}
	b, err := s.read(ctx, identityObject(id), 1<<16)
	if err != nil {
		return keyRecord{}, fmt.Errorf("backup key %s: %w", id, err)
	}
	rec, err := parseKeyRecord(b)
	if err != nil {
		return rec, err
	}
	if rec.ID != id {
		return rec, fmt.Errorf("backup key %s: record names %s", id, rec.ID)
	}
	return rec, nil
}

func (s *Service) publicKey(ctx context.Context) func(string) (ed25519.PublicKey, error) {
	return func(id string) (ed25519.PublicKey, error) {
		k, err := s.backupKey(ctx, id)
		if err != nil {
			return nil, err
		}
		return k.public(), nil
	}
}

// read fetches a small object whole.
func (s *Service) read(ctx context.Context, name string, limit int64) ([]byte, error) {
	rc, err := s.o.Target.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b, nil
}

// Manifest reads and verifies the manifest of backup id.
func (s *Service) Manifest(ctx context.Context, id string) (Manifest, error) {
	var m Manifest
	if CheckName(manifestObject(id)) != nil {
		return m, fmt.Errorf("%w: %q is not a backup id", ErrNotFound, id)
	}
	b, err := s.read(ctx, manifestObject(id), 1<<20)
	if err != nil {
		return m, err
	}
	if _, err := openEnvelope(b, "manifest", s.publicKey(ctx), &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", id, err)
	}
	if err := m.validate(id); err != nil {
		return m, fmt.Errorf("manifest %s: %w: %v", id, ErrSignature, err)
	}
	return m, nil
}

// State says whether a backup can be relied on.
type State string

const (
	StateGood        State = "good"         // complete, and its restore drill passed
	StateUnverified  State = "unverified"   // complete, not drilled yet
	StateDrillFailed State = "drill_failed" // complete, but the restore drill failed
	StateDamaged     State = "damaged"      // the manifest names an object that is missing or of the wrong size
	StateInvalid     State = "invalid"      // the manifest's signature does not verify
	StateIncomplete  State = "incomplete"   // objects without a manifest: an interrupted backup
)

// Backup is one backup as the target holds it.
type Backup struct {
	ID        string
	CreatedAt time.Time
	State     State
	Problem   string       // why it is not good
	Size      int64        // bytes stored: data and key objects
	KeysKept  bool         // its key object is still kept
	Manifest  *Manifest    // nil unless the manifest verified
	Drill     *DrillResult // the latest recorded drill, if any
	objects   []string
}

// List returns every backup in the target, newest first, with its state.
// Only a backup whose signed manifest verifies, whose objects match it and
// whose restore drill passed is good.
func (s *Service) List(ctx context.Context) ([]Backup, error) {
	objs, err := s.o.Target.List(ctx, "")
	if err != nil {
		return nil, err
	}
	byID := map[string]*Backup{}
	get := func(id string) *Backup {
		b, ok := byID[id]
		if !ok {
			b = &Backup{ID: id}
			byID[id] = b
		}
		return b
	}
	sizes := map[string]int64{}
	var manifests, drills []string
	for _, o := range objs {
		dir, file, ok := strings.Cut(o.Name, "/")
		if !ok {
			continue
		}
		id, _, _ := strings.Cut(file, ".")
		if _, ok := idTime(id); !ok {
			continue
		}
		switch dir {
		case "manifests":
			manifests = append(manifests, id)
		case "drills":
			drills = append(drills, id)
		case "data", "keys":
		default:
			continue // identity/, and other areas' objects
		}
		b := get(id)
		b.objects = append(b.objects, o.Name)
		sizes[o.Name] = o.Size
	}
	for _, id := range manifests {
		b := get(id)
		m, err := s.Manifest(ctx, id)
		switch {
		case errors.Is(err, ErrSignature):
			b.State, b.Problem = StateInvalid, err.Error()
			continue
		case errors.Is(err, ErrNotFound):
			continue // deleted since the listing (retention elsewhere): what is left is incomplete
		case err != nil:
			return nil, err
		}
		b.Manifest, b.CreatedAt = &m, m.CreatedAt
		sz, ok := sizes[m.Data.Name]
		if !ok || sz != m.Data.Size {
			b.State, b.Problem = StateDamaged, fmt.Sprintf("data object %s is missing or not %d bytes", m.Data.Name, m.Data.Size)
			continue
		}
		b.Size = sz
		if ks, ok := sizes[m.Keys.Name]; ok && ks == m.Keys.Size {
			b.KeysKept, b.Size = true, b.Size+ks
		}
		b.State, b.Problem = StateUnverified, "no restore drill recorded"
	}
	for _, id := range drills {
		b := get(id)
		if b.State != StateUnverified {
			continue // no manifest, or one that failed its own checks: a drill cannot make it good
		}
		var d DrillResult
		raw, err := s.read(ctx, drillObject(id), 1<<20)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := openEnvelope(raw, "drill", s.publicKey(ctx), &d); err != nil || d.ID != id {
			b.State, b.Problem = StateInvalid, fmt.Sprintf("drill record: %v", err)
			continue
		}
		b.Drill = &d
		if d.OK {
			b.State, b.Problem = StateGood, ""
		} else {
			b.State, b.Problem = StateDrillFailed, d.Error
		}
	}
	out := make([]Backup, 0, len(byID))
	for _, b := range byID {
		if b.State == "" {
			b.State, b.Problem = StateIncomplete, "no manifest: the backup did not finish"
			for _, o := range b.objects {
				b.Size += sizes[o]
			}
		}
		if b.CreatedAt.IsZero() {
			b.CreatedAt, _ = idTime(b.ID)
		}
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// NewestGood returns the newest good backup, if there is one.
func NewestGood(list []Backup) (Backup, bool) {
	for _, b := range list {
		if b.State == StateGood {
			return b, true
		}
	}
	return Backup{}, false
}

// NewestGood returns the newest good backup in the target.
func (s *Service) NewestGood(ctx context.Context) (Backup, bool, error) {
	list, err := s.List(ctx)
	if err != nil {
		return Backup{}, false, err
	}
	b, ok := NewestGood(list)
	return b, ok, nil
}

// newestKeys picks the key backup a restore uses: the newest one still
// kept, so keys destroyed since (shredded tenants, expired log days) stay
// destroyed in the restored database.
func newestKeys(list []Backup, dialect string) (Backup, bool) {
	for _, b := range list {
		if b.State == StateGood && b.KeysKept && b.Manifest.Dialect == dialect {
			return b, true
		}
	}
	return Backup{}, false
}

// runs table: one row per attempt, for the console and metrics.

func (s *Service) startRun(ctx context.Context, id string, at time.Time) error {
	return s.o.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO backup_runs (id, started_at, state) VALUES ($1, $2, 'running')`, id, at)
		return err
	})
}

func (s *Service) finishRun(ctx context.Context, id, state string, cause error, bytes int64) {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	err := s.o.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE backup_runs SET state = $2, error = $3, data_bytes = $4, finished_at = $5 WHERE id = $1`,
			id, state, msg, bytes, tx.Now())
		return err
	})
	if err != nil {
		s.o.Log.Error("record backup run", "id", id, "err", err)
	}
	if cause != nil {
		s.o.Log.Error("backup failed", "id", id, "err", cause)
	}
}

func (s *Service) recordDrill(ctx context.Context, d DrillResult) {
	state := "passed"
	if !d.OK {
		state = "failed"
	}
	err := s.o.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE backup_runs SET drill_state = $2, drill_at = $3, drill_error = $4 WHERE id = $1`,
			d.ID, state, d.At, d.Error)
		return err
	})
	if err != nil {
		s.o.Log.Error("record restore drill", "id", d.ID, "err", err)
	}
}

// markInterrupted closes runs whose process died mid-backup.
func (s *Service) markInterrupted(ctx context.Context) {
	s.o.DB.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE backup_runs SET state = 'failed', finished_at = $1,
			error = 'interrupted: the process stopped during the backup' WHERE state = 'running' AND started_at < $2`,
			tx.Now(), tx.Now().Add(-interruptedAfter))
		return err
	})
}

func (s *Service) lastCompleted(ctx context.Context) (time.Time, bool, error) {
	var t time.Time
	err := s.o.DB.SQL.QueryRowContext(ctx, `SELECT started_at FROM backup_runs WHERE state = 'complete'
		ORDER BY started_at DESC LIMIT 1`).Scan(&t)
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	return t, err == nil, err
}

// Run is one row of backup_runs.
type Run struct {
	ID         string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	State      string    // running | complete | failed
	Error      string
	Bytes      int64
	DrillState string // pending | passed | failed
	DrillAt    time.Time
	DrillError string
}

// Runs returns the latest backup attempts, newest first (failures included,
// which leave nothing in the target).
func (s *Service) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.o.DB.SQL.QueryContext(ctx, `SELECT id, started_at, finished_at, state, error, data_bytes, drill_state, drill_at, drill_error
		FROM backup_runs ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var fin, dat sql.NullTime
		if err := rows.Scan(&r.ID, &r.StartedAt, &fin, &r.State, &r.Error, &r.Bytes, &r.DrillState, &dat, &r.DrillError); err != nil {
			return nil, err
		}
		r.FinishedAt, r.DrillAt = fin.Time, dat.Time
		out = append(out, r)
	}
	return out, rows.Err()
}

// Status is the summary the metrics and the console show.
type Status struct {
	NewestGoodID string
	NewestGoodAt time.Time // zero: no good backup
	LastDrillID  string
	LastDrillAt  time.Time // zero: no drill yet
	LastDrillOK  bool
	LastDrillErr string
}

// Status reads the newest good backup and the last drill from the runs table.
func (s *Service) Status(ctx context.Context) (Status, error) {
	var st Status
	err := s.o.DB.SQL.QueryRowContext(ctx, `SELECT id, started_at FROM backup_runs WHERE state = 'complete' AND drill_state = 'passed'
		ORDER BY started_at DESC LIMIT 1`).Scan(&st.NewestGoodID, &st.NewestGoodAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, err
	}
	var at sql.NullTime
	var state string
	err = s.o.DB.SQL.QueryRowContext(ctx, `SELECT id, drill_at, drill_state, drill_error FROM backup_runs WHERE drill_at IS NOT NULL
		ORDER BY drill_at DESC LIMIT 1`).Scan(&st.LastDrillID, &at, &state, &st.LastDrillErr)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, err
	}
	st.LastDrillAt, st.LastDrillOK = at.Time, state == "passed"
	return st, nil
}
