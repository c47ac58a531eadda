package export

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// Jira's points quota (docs/jira-rate-limits.md) is the real limit of a BI
// connector that re-reads a site on every refresh. Every call to a tenant's
// Jira goes through the tenant's jira.Tenant (Feeds.Limits), which paces it;
// here a feed claims the points it will need before it reads anything, so
// that an export that cannot finish within the quota is refused with a clear
// message instead of failing half-way, and one that can is paced to fit.

// quotaHorizon is how far ahead a claim may count on the pool refilling: a
// BI tool keeps a request open for about ten minutes.
const quotaHorizon = 10 * time.Minute

// pointsPerRow are Jira points per row read: one per issue plus one per
// page of 100 (with fields), or twice that when ids are listed first and
// then hydrated.
const (
	pointsPerRowFields = 1.01
	pointsPerRowIDs    = 2.02
)

// tenantLimits is the tenant's standing with Jira's limits, shared by every
// client of the tenant in this process.
func (f *Feeds) tenantLimits(tenantID string) *jira.Tenant {
	if f == nil || f.Limits == nil {
		return nil
	}
	return f.Limits.Tenant(tenantID)
}

// claim opens the request's claim on the tenant's points pool: calls made
// with the returned context count against it (nil without Limits).
func claim(ctx context.Context, fr *feedRequest) (context.Context, *jira.Reservation) {
	var res *jira.Reservation
	if t := fr.user.Limits; t != nil {
		res = t.Claim()
	}
	return jira.WithSpend(ctx, fr.source.ID, res), res
}

// need says what the rest of a walk needs: left rows (-1: unknown; then the
// page's limit), read sliced (fields) or by id. It fails with the feed's
// TooManyRequests error when the quota cannot supply them within
// quotaHorizon.
func (f *Feeds) need(fr *feedRequest, res *jira.Reservation, from Cursor, table string, left, limit int) error {
	if res == nil {
		return nil
	}
	rows := left
	if rows < 0 {
		rows = limit
	}
	per := pointsPerRowFields
	if from.Mode != modeSlices || table == TableChangelog {
		per = pointsPerRowIDs
	}
	if err := res.Need(int(float64(max(rows, 0))*per)+1, quotaHorizon); err != nil {
		f.noteRefusal(fr, err)
		return quotaError(err)
	}
	return nil
}

// refusal is a feed request the quota could not carry, as the admin page
// lists it: when, which data source, and the numbers. Nothing else.
type refusal struct {
	At        time.Time
	Source    string
	Need      int
	Remaining int
	Reset     time.Time
}

// refusals keeps each tenant's latest refusals in memory (this process).
type refusals struct {
	mu sync.Mutex
	m  map[string][]refusal
}

const keptRefusals = 10

func (f *Feeds) noteRefusal(fr *feedRequest, err error) {
	var qe *jira.QuotaError
	if !errors.As(err, &qe) {
		return
	}
	f.refused.mu.Lock()
	defer f.refused.mu.Unlock()
	if f.refused.m == nil {
		f.refused.m = map[string][]refusal{}
	}
	list := append(f.refused.m[fr.inst.TenantID], refusal{At: time.Now().UTC(), Source: fr.source.ID, Need: qe.Need, Remaining: qe.Remaining, Reset: qe.Reset})
	if len(list) > keptRefusals {
		list = list[len(list)-keptRefusals:]
	}
	f.refused.m[fr.inst.TenantID] = list
}

func (f *Feeds) refusalsOf(tenantID string) []refusal {
	f.refused.mu.Lock()
	defer f.refused.mu.Unlock()
	return append([]refusal(nil), f.refused.m[tenantID]...)
}

// quotaError turns Jira's quota refusal into the feed's 429, with the
// message that says what to do.
func quotaError(err error) error {
	var qe *jira.QuotaError
	if !errors.As(err, &qe) {
		return err
	}
	oe := &odata.Error{Status: http.StatusTooManyRequests, Code: odata.CodeTooManyRequests, Message: qe.Error()}
	if wait := time.Until(qe.Reset); wait > 0 {
		oe.RetryAfter = strconv.Itoa(int(wait.Seconds()) + 1)
	}
	return oe
}

// zoneCache keeps each token owner's time zone (from /myself) for a while:
// JQL reads date-times in it, and asking Jira on every page would cost a
// round trip and three points each time.
type zoneCache struct {
	mu sync.Mutex
	m  map[string]zoneEntry
}

type zoneEntry struct {
	loc *time.Location
	at  time.Time
}

const zoneTTL = 10 * time.Minute

// userZone is the time zone JQL uses for the user the feed runs as.
func (f *Feeds) userZone(ctx context.Context, fr *feedRequest) (*time.Location, error) {
	k := fr.inst.TenantID + "\x00" + fr.owner.AccountID
	f.zones.mu.Lock()
	e, ok := f.zones.m[k]
	f.zones.mu.Unlock()
	if ok && time.Since(e.at) < zoneTTL {
		return e.loc, nil
	}
	me, err := fr.user.Myself(jira.WithSpend(ctx, "app", nil))
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if l, err := time.LoadLocation(me.TimeZone); err == nil && me.TimeZone != "" {
		loc = l
	}
	f.zones.mu.Lock()
	if f.zones.m == nil || len(f.zones.m) > 10000 {
		f.zones.m = map[string]zoneEntry{}
	}
	f.zones.m[k] = zoneEntry{loc, time.Now()}
	f.zones.mu.Unlock()
	return loc, nil
}
