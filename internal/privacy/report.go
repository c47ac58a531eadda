package privacy

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

// ReportPath is the personal data reporting API of a Connect app, on the
// tenant's site, signed as the app (user privacy guide for app developers).
const ReportPath = "/rest/atlassian-connect/latest/report-accounts"

// MaxBatch is the most accounts the API takes in one request.
const MaxBatch = 90

// Signer signs a request as the app for one tenant
// (atlassian.Connect.AppAuth).
type Signer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// Doer sends HTTP requests (the egress gate's Jira client).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Eraser removes what one area links to an account, named by its pseudonym
// in a tenant, once Atlassian reports the account closed.
type Eraser struct {
	Category string // as the closed event counts it, e.g. "access tokens"
	Erase    func(ctx context.Context, tenantID, pseudonym string) (int64, error)
}

// Reporter reports held accounts to Atlassian and acts on the answers.
type Reporter struct {
	Register *Register
	Tenants  *tenant.Store
	AppAuth  func(tenant.Installation) Signer
	HTTP     Doer
	Log      *slog.Logger
	// Sleep waits out a short Retry-After; nil sleeps on the wall clock.
	// Tests pass one that moves their fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxWait is the longest Retry-After waited out within a run (default
	// 2 minutes); a longer one pauses all reporting until it has passed.
	MaxWait time.Duration

	mu      sync.Mutex
	erasers []Eraser
}

// AddEraser registers an area's Eraser. They run in the order added, before
// the account's encrypted copy is deleted, so a run that stops half-way is
// finished by the next "closed" answer.
func (rp *Reporter) AddEraser(e Eraser) {
	if e.Category == "" || e.Erase == nil {
		panic("privacy: an Eraser needs a category and a function")
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.erasers = append(rp.erasers, e)
}

func (rp *Reporter) log() *slog.Logger {
	if rp.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rp.Log
}

func (rp *Reporter) db() *store.DB { return rp.Register.db }

// state is the app-wide reporting state.
type state struct {
	cycle  time.Duration
	paused time.Time
}

func (rp *Reporter) state(ctx context.Context) (state, error) {
	var secs int64
	var paused sql.NullTime
	err := rp.db().SQL.QueryRowContext(ctx, `SELECT cycle_seconds, paused_until FROM privacy_report_state WHERE id = 1`).Scan(&secs, &paused)
	if errors.Is(err, sql.ErrNoRows) {
		return state{cycle: DefaultCyclePeriod}, nil
	}
	if err != nil {
		return state{}, err
	}
	s := state{cycle: time.Duration(secs) * time.Second}
	if paused.Valid {
		s.paused = paused.Time.UTC()
	}
	return s, nil
}

func (rp *Reporter) saveState(ctx context.Context, s state) error {
	return rp.db().InTx(ctx, func(tx *store.Tx) error {
		p := sql.NullTime{Time: s.paused, Valid: !s.paused.IsZero()}
		_, err := tx.ExecContext(ctx, `INSERT INTO privacy_report_state (id, cycle_seconds, paused_until) VALUES (1, $1, $2)
			ON CONFLICT (id) DO UPDATE SET cycle_seconds = $1, paused_until = $2`, int64(s.cycle/time.Second), p)
		return err
	})
}

// RunResult says what one reporting run did.
type RunResult struct {
	Reported    int       // accounts reported (accepted by Atlassian)
	Requests    int       // report requests answered 200 or 204
	Closed      int       // accounts erased on a "closed" answer
	Updated     int       // "updated" answers recorded
	Ignored     int       // answers about accounts not asked about, or unknown statuses
	Throttled   int       // 429 answers
	Skipped     int       // tenants that could not be reported now (no active site to report through)
	PausedUntil time.Time // set when a long Retry-After paused reporting
}

// Run reports every account that is due, tenant by tenant, in batches of at
// most MaxBatch, and acts on the answers. Accounts are due when first held
// and then once per cycle period; while a 429's Retry-After runs, nothing is
// sent.
func (rp *Reporter) Run(ctx context.Context) (RunResult, error) {
	var r RunResult
	st, err := rp.state(ctx)
	if err != nil {
		return r, err
	}
	if now := rp.db().Now(); st.paused.After(now) {
		r.PausedUntil = st.paused
		return r, nil
	}
	due, err := rp.dueTenants(ctx)
	if err != nil {
		return r, err
	}
	var errs []error
	for _, tenantID := range due {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		paused, err := rp.reportTenant(ctx, tenantID, &st, &r)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %s: %w", tenantID, err))
		}
		if paused {
			break
		}
	}
	return r, errors.Join(errs...)
}

func (rp *Reporter) dueTenants(ctx context.Context) ([]string, error) {
	rows, err := rp.db().SQL.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM privacy_accounts WHERE next_report_at <= $1 ORDER BY tenant_id`, rp.db().Now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// via picks the site a tenant's accounts are reported through: its own if
// active, else any active site (the API takes any accountId from any of
// the app's installations). The API is Connect's, signed as the app with a
// site's shared secret, so only a site installed through Connect can
// carry a report: a Forge-only site's accounts go through another one.
func (rp *Reporter) via(ctx context.Context, tenantID string) (tenant.Installation, bool, error) {
	in, err := rp.Tenants.ByID(ctx, tenantID)
	if err == nil && in.State == tenant.Active && in.Connect {
		return in, true, nil
	}
	if err != nil && !errors.Is(err, tenant.ErrNotFound) {
		return in, false, err
	}
	active, err := rp.Tenants.Active(ctx)
	if err != nil {
		return tenant.Installation{}, false, err
	}
	for _, a := range active {
		if a.Connect {
			return a, true, nil
		}
	}
	return tenant.Installation{}, false, nil
}

type held struct {
	pseudonym string
	accountID string
	dataAsOf  time.Time
}

// reportTenant reports a tenant's due accounts. paused reports a long
// Retry-After: the run stops.
func (rp *Reporter) reportTenant(ctx context.Context, tenantID string, st *state, r *RunResult) (paused bool, err error) {
	via, ok, err := rp.via(ctx, tenantID)
	if err != nil {
		return false, err
	}
	if !ok {
		r.Skipped++
		return false, nil
	}
	for {
		batch, shredded, err := rp.dueBatch(ctx, tenantID)
		if err != nil {
			return false, err
		}
		if shredded {
			// The tenant was purged: its copies cannot be read by anyone,
			// and what is left of them goes.
			_, err := rp.Register.DeleteTenant(ctx, tenantID)
			return false, err
		}
		if len(batch) == 0 {
			return false, nil
		}
		answers, wait, err := rp.send(ctx, via, batch, st, r)
		if err != nil {
			return false, err
		}
		if wait > 0 {
			st.paused = rp.db().Now().Add(wait)
			r.PausedUntil = st.paused
			return true, rp.saveState(ctx, *st)
		}
		r.Reported += len(batch)
		// The answers first: if acting on one fails, the batch stays due and
		// the next run asks again, rather than a cycle later.
		for _, a := range answers {
			switch a.Status {
			case StatusClosed:
				if _, err := rp.EraseAccount(ctx, a.AccountID); err != nil {
					return false, err
				}
				r.Closed++
			case StatusUpdated:
				if err := rp.recordUpdated(ctx, tenantID, a.AccountID); err != nil {
					return false, err
				}
				r.Updated++
			}
		}
		if err := rp.markReported(ctx, tenantID, batch, st.cycle); err != nil {
			return false, err
		}
	}
}

// dueBatch reads up to MaxBatch due accounts of a tenant and decrypts them.
// A row that cannot be decrypted for another reason than a shredded keyset
// is logged and its turn passes, so that it never blocks the others.
func (rp *Reporter) dueBatch(ctx context.Context, tenantID string) (out []held, shredded bool, err error) {
	rows, err := rp.db().SQL.QueryContext(ctx, `SELECT pseudonym, account_enc, data_as_of FROM privacy_accounts
		WHERE tenant_id = $1 AND next_report_at <= $2 ORDER BY next_report_at, pseudonym LIMIT $3`, tenantID, rp.db().Now(), MaxBatch)
	if err != nil {
		return nil, false, err
	}
	type row struct {
		pseudonym string
		enc       []byte
		asOf      time.Time
	}
	var raw []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.pseudonym, &x.enc, &x.asOf); err != nil {
			rows.Close()
			return nil, false, err
		}
		raw = append(raw, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	var unreadable []string
	for _, x := range raw {
		pt, err := rp.Register.keys.Decrypt(ctx, tenantID, accountAD(tenantID, x.pseudonym), x.enc)
		switch {
		case errors.Is(err, keys.ErrShredded) || errors.Is(err, keys.ErrNoTenantKey):
			return nil, true, nil
		case err != nil:
			unreadable = append(unreadable, x.pseudonym)
			continue
		}
		out = append(out, held{pseudonym: x.pseudonym, accountID: string(pt), dataAsOf: x.asOf.UTC()})
	}
	if len(unreadable) > 0 {
		rp.log().ErrorContext(ctx, "privacy: encrypted account copies that do not decrypt; they are skipped this cycle", "tenant", tenantID, "rows", len(unreadable))
		st, err := rp.state(ctx)
		if err != nil {
			return nil, false, err
		}
		if err := rp.markReported(ctx, tenantID, pseudonymsOnly(unreadable), st.cycle); err != nil {
			return nil, false, err
		}
	}
	return out, false, nil
}

func pseudonymsOnly(ps []string) []held {
	out := make([]held, len(ps))
	for i, p := range ps {
		out[i] = held{pseudonym: p}
	}
	return out
}

// maxAttempts bounds how often one batch is sent within a run (429s waited
// out in between).
const maxAttempts = 5

// send posts one batch. It waits out short Retry-Afters (up to MaxWait) and
// returns wait > 0 for a long one: nothing more may be sent until then.
func (rp *Reporter) send(ctx context.Context, via tenant.Installation, batch []held, st *state, r *RunResult) (answers []Answer, wait time.Duration, err error) {
	type account struct {
		AccountID string `json:"accountId"`
		UpdatedAt string `json:"updatedAt"`
	}
	body := struct {
		Accounts []account `json:"accounts"`
	}{}
	asked := map[string]bool{}
	for _, h := range batch {
		body.Accounts = append(body.Accounts, account{AccountID: h.accountID, UpdatedAt: h.dataAsOf.Format(time.RFC3339)})
		asked[h.accountID] = true
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, 0, err
	}
	maxWait := rp.MaxWait
	if maxWait <= 0 {
		maxWait = 2 * time.Minute
	}
	target := strings.TrimSuffix(via.BaseURL, "/") + ReportPath
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
		if err != nil {
			return nil, 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if err := rp.AppAuth(via).Authorize(ctx, req); err != nil {
			return nil, 0, fmt.Errorf("sign the report: %w", err)
		}
		resp, err := rp.HTTP.Do(req)
		if err != nil {
			return nil, 0, fmt.Errorf("report accounts: %w", err)
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody+1))
		resp.Body.Close()
		if d, ok := parseCyclePeriod(resp.Header.Get("Cycle-Period")); ok && d != st.cycle {
			st.cycle = d
			if err := rp.saveState(ctx, *st); err != nil {
				return nil, 0, err
			}
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if rerr != nil {
				return nil, 0, fmt.Errorf("report accounts: read the answer: %w", rerr)
			}
			answers, ignored, err := parseAnswer(b, asked)
			r.Requests++
			r.Ignored += ignored
			return answers, 0, err
		case http.StatusNoContent:
			r.Requests++
			return nil, 0, nil
		case http.StatusTooManyRequests:
			r.Throttled++
			d := parseRetryAfter(resp.Header.Get("Retry-After"), rp.db().Now())
			rp.log().WarnContext(ctx, "privacy: personal data reporting throttled", "retry_after_s", int(d.Seconds()), "attempt", attempt)
			if d > maxWait || attempt >= maxAttempts {
				return nil, max(d, time.Second), nil
			}
			if err := rp.sleep(ctx, d); err != nil {
				return nil, 0, err
			}
		default:
			return nil, 0, fmt.Errorf("report accounts: HTTP %d", resp.StatusCode)
		}
	}
}

func (rp *Reporter) sleep(ctx context.Context, d time.Duration) error {
	if rp.Sleep != nil {
		return rp.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// markReported moves the batch's next report a cycle ahead.
func (rp *Reporter) markReported(ctx context.Context, tenantID string, batch []held, cycle time.Duration) error {
	return rp.db().InTx(ctx, func(tx *store.Tx) error {
		for _, h := range batch {
			if _, err := tx.ExecContext(ctx, `UPDATE privacy_accounts SET reported_at = $3, next_report_at = $4
				WHERE tenant_id = $1 AND pseudonym = $2`, tenantID, h.pseudonym, tx.Now(), tx.Now().Add(cycle)); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordUpdated records an "updated" answer. Ferry keeps no profile data to
// refresh; its data of the account is current as of now, which is what it
// reports from now on.
func (rp *Reporter) recordUpdated(ctx context.Context, tenantID, accountID string) error {
	pseudonym, err := rp.Register.keys.Pseudonym(ctx, tenantID, accountID)
	if err != nil {
		return err
	}
	return rp.db().InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE privacy_accounts SET data_as_of = $3, updated_answered_at = $3
			WHERE tenant_id = $1 AND pseudonym = $2`, tenantID, pseudonym, tx.Now()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO privacy_account_events (at, tenant_id, kind) VALUES ($1, $2, 'updated')`, tx.Now(), tenantID)
		return err
	})
}

// CategoryCopies is what the closed event counts for the encrypted copy.
const CategoryCopies = "encrypted accountId copies"

// EraseAccount erases everything Ferry links to a closed account, in every
// tenant that holds it: each area's Eraser, then the encrypted copy. It
// returns the rows erased per data category.
func (rp *Reporter) EraseAccount(ctx context.Context, accountID string) (map[string]int64, error) {
	rows, err := rp.db().SQL.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM privacy_accounts ORDER BY tenant_id`)
	if err != nil {
		return nil, err
	}
	var tenants []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		tenants = append(tenants, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rp.mu.Lock()
	erasers := append([]Eraser(nil), rp.erasers...)
	rp.mu.Unlock()
	total := map[string]int64{}
	for _, tenantID := range tenants {
		pseudonym, err := rp.Register.keys.Pseudonym(ctx, tenantID, accountID)
		if errors.Is(err, keys.ErrShredded) || errors.Is(err, keys.ErrNoTenantKey) {
			continue // a purged tenant: nothing of it can be linked to anyone
		}
		if err != nil {
			return total, err
		}
		var n int64
		if err := rp.db().SQL.QueryRowContext(ctx, `SELECT count(*) FROM privacy_accounts WHERE tenant_id = $1 AND pseudonym = $2`,
			tenantID, pseudonym).Scan(&n); err != nil {
			return total, err
		}
		if n == 0 {
			continue
		}
		erased := map[string]int64{}
		for _, e := range erasers {
			k, err := e.Erase(ctx, tenantID, pseudonym)
			if err != nil {
				return total, fmt.Errorf("erase %s: %w", e.Category, err)
			}
			erased[e.Category] += k
		}
		counts, _ := json.Marshal(withCopies(erased, n))
		if err := rp.db().InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM privacy_accounts WHERE tenant_id = $1 AND pseudonym = $2`, tenantID, pseudonym); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO privacy_account_events (at, tenant_id, kind, erased) VALUES ($1, $2, 'closed', $3)`,
				tx.Now(), tenantID, string(counts))
			return err
		}); err != nil {
			return total, err
		}
		rp.Register.forget(tenantID, pseudonym)
		for k, v := range withCopies(erased, n) {
			total[k] += v
		}
		rp.log().InfoContext(ctx, "privacy: closed account erased", "tenant", tenantID, "categories", len(erased))
	}
	return total, nil
}

func withCopies(m map[string]int64, copies int64) map[string]int64 {
	out := map[string]int64{CategoryCopies: copies}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Event is one recorded answer, as operators list them.
type Event struct {
	At       time.Time
	TenantID string
	Kind     Status
	Erased   map[string]int64
}

// Events lists a tenant's recorded answers, oldest first.
func (rp *Reporter) Events(ctx context.Context, tenantID string) ([]Event, error) {
	rows, err := rp.db().SQL.QueryContext(ctx, `SELECT at, tenant_id, kind, erased FROM privacy_account_events WHERE tenant_id = $1 ORDER BY at, id`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var kind, erased string
		if err := rows.Scan(&e.At, &e.TenantID, &kind, &erased); err != nil {
			return nil, err
		}
		e.At, e.Kind = e.At.UTC(), Status(kind)
		if erased != "" {
			if err := json.Unmarshal([]byte(erased), &e.Erased); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Categories lists the Erasers' categories, sorted (for docs and tests).
func (rp *Reporter) Categories() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []string
	for _, e := range rp.erasers {
		out = append(out, e.Category)
	}
	sort.Strings(out)
	return out
}

// ReportJobName is the job's name for `ferry jobs run`.
const ReportJobName = "privacy.report"

// ReportJob reports held accounts to Atlassian. Hourly: each account is due
// once per cycle period (seven days by default), so most runs send nothing;
// new accounts are reported within the hour.
func ReportJob(rp *Reporter, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  ReportJobName,
		Doc:   "report the accountIds Ferry holds to Atlassian; erase closed accounts",
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			r, err := rp.Run(ctx)
			if log != nil {
				log.Info("personal data report", "reported", r.Reported, "requests", r.Requests, "closed", r.Closed,
					"updated", r.Updated, "ignored", r.Ignored, "throttled", r.Throttled, "skipped", r.Skipped)
			}
			return err
		},
	}
}
