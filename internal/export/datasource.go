package export

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"

	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"ferry/internal/apperr"
	"ferry/internal/jira"
)

// Data sources live in the customer's own Atlassian site — Connect app
// properties, or Forge storage on Forge (PropertyStore) — never in Ferry's
// database (statement: Customer Data stays in the parent product). Ferry
// reads them back on use and caches them in memory for a short time.

// Tables a data source can expose.
const (
	TableIssues    = "Issues"
	TableChangelog = "Changelog"
)

// sourcePrefix names the app properties that hold data sources.
const sourcePrefix = "ds."

// settingsKey names the app property with the site's admin settings.
const settingsKey = "settings"

// maxPropertyBytes is Jira's limit for one app property value.
const maxPropertyBytes = 32 << 10

// DataSource is one feed definition.
type DataSource struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	JQL    string   `json:"jql"`
	Fields []string `json:"fields"` // Jira field ids, e.g. "summary", "customfield_10010"
	Tables []string `json:"tables"`
	// WorkingTime is the working calendar StatusHistory counts
	// WorkingSeconds in; nil for none.
	WorkingTime *WorkingTime `json:"workingTime,omitempty"`
	// Owner is the accountId of the user who owns the source: only they and
	// Jira administrators edit or delete it. Sources saved before owners
	// existed belong to whoever created them (normalize).
	Owner string `json:"owner,omitempty"`
	// Visibility says who else sees and pulls it: VisibilityPrivate (the
	// owner only), VisibilityGroups (members of Groups) or VisibilityEveryone.
	Visibility string    `json:"visibility,omitempty"`
	Groups     []string  `json:"groups,omitempty"`
	Deleted    bool      `json:"deleted,omitempty"` // tombstones of earlier versions only (retire)
	History    []Change  `json:"history"`
	Updated    time.Time `json:"updated"`
}

// Who besides the owner (and Jira administrators) sees a data source.
const (
	VisibilityPrivate  = "private"
	VisibilityGroups   = "groups"
	VisibilityEveryone = "everyone"
)

// Change is one entry of a data source's history. By (and To, for a
// transfer of ownership) are accountIds kept in the customer's own Jira; the
// app shows display names fetched at view time.
type Change struct {
	Action string    `json:"action"` // created | edited | transferred | deleted
	By     string    `json:"by"`
	To     string    `json:"to,omitempty"` // the new owner, for transferred
	At     time.Time `json:"at"`
}

// normalize fills in what sources saved by earlier versions lack: they
// belonged to their creator and were visible to everyone.
func (ds *DataSource) normalize() {
	if ds.Owner == "" {
		for _, h := range ds.History {
			if h.Action == "created" {
				ds.Owner = h.By
				break
			}
		}
	}
	if ds.Visibility == "" {
		ds.Visibility = VisibilityEveryone
	}
}

// Sources reads and writes data sources through a tenant's PropertyStore.
// What it reads is kept in memory for TTL; an entry past TTL is still
// answered while it is refreshed in the background (up to staleMax), so
// that no feed request waits for Jira to re-read a source it just read.
// A change made through this Sources takes effect at once; one made on
// another replica within TTL plus one refresh. The site's settings and the
// projects a user may browse are never answered past TTL (freshOr).
type Sources struct {
	TTL time.Duration // memory cache lifetime; default 30 s

	mu         sync.Mutex
	cache      map[string]cached // by tenant id + key
	refreshing map[string]bool
}

// staleMax is the oldest entry still answered while it is refreshed.
const staleMax = 5 * time.Minute

type cached struct {
	v  any
	at time.Time
}

func (s *Sources) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return 30 * time.Second
}

// freshOr answers k from memory only within TTL; past it, k is read now
// with load. For what decides who may do what (the site's settings, the
// projects a user may browse): a change made on another replica is obeyed
// within TTL, whatever Jira's latency.
func (s *Sources) freshOr(ctx context.Context, k string, load func(ctx context.Context) (any, error)) (any, error) {
	s.mu.Lock()
	c, ok := s.cache[k]
	s.mu.Unlock()
	if ok && time.Since(c.at) <= s.ttl() {
		return c.v, nil
	}
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	s.put(k, v)
	return v, nil
}

// cachedOr answers k from memory, refreshing an entry past TTL in the
// background; a missing or too old entry is read now with load.
func (s *Sources) cachedOr(ctx context.Context, k string, load func(ctx context.Context) (any, error)) (any, error) {
	s.mu.Lock()
	c, ok := s.cache[k]
	age := time.Since(c.at)
	if ok && age <= s.ttl() {
		s.mu.Unlock()
		return c.v, nil
	}
	if ok && age <= staleMax {
		if !s.refreshing[k] {
			if s.refreshing == nil {
				s.refreshing = map[string]bool{}
			}
			s.refreshing[k] = true
			go func() {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				v, err := load(rctx)
				s.mu.Lock()
				delete(s.refreshing, k)
				s.mu.Unlock()
				if err == nil {
					s.putIfNotForgotten(k, v, c.at)
				}
			}()
		}
		s.mu.Unlock()
		return c.v, nil
	}
	s.mu.Unlock()
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	s.put(k, v)
	return v, nil
}

// putIfNotForgotten stores a background refresh unless the entry it
// refreshes was dropped meanwhile (a change through this Sources): the
// refresh may have read Jira before the change.
func (s *Sources) putIfNotForgotten(k string, v any, was time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[k]; ok && c.at.Equal(was) {
		s.cache[k] = cached{v: v, at: time.Now()}
	}
}

func (s *Sources) put(k string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cached{}
	}
	s.cache[k] = cached{v: v, at: time.Now()}
}

// Forget drops what is cached of a tenant (its sources moved to Forge
// storage, or the tenant was purged).
func (s *Sources) Forget(tenantID string) { s.forget(tenantID) }

func (s *Sources) forget(tenantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if strings.HasPrefix(k, tenantID+"\x00") {
			delete(s.cache, k)
		}
	}
}

// List returns the tenant's data sources, sorted by name: all of them;
// who may see which is the caller's to decide (viewer.mayView).
func (s *Sources) List(ctx context.Context, ps PropertyStore, tenantID string) ([]DataSource, error) {
	v, err := s.cachedOr(ctx, tenantID+"\x00list", func(ctx context.Context) (any, error) { return s.list(ctx, ps, tenantID) })
	if err != nil {
		return nil, err
	}
	return v.([]DataSource), nil
}

func (s *Sources) list(ctx context.Context, ps PropertyStore, tenantID string) ([]DataSource, error) {
	keys, err := ps.Keys(ctx, sourcePrefix)
	if err != nil {
		return nil, err
	}
	var out []DataSource
	for _, k := range keys {
		var ds DataSource
		found, err := ps.Get(ctx, k, &ds)
		if err != nil {
			return nil, err
		}
		if !found {
			continue // deleted between list and get
		}
		ds.normalize()
		if ds.Deleted {
			// A tombstone of an earlier version still holds the definition:
			// keep its history, remove the rest.
			if err := s.retire(ctx, ps, tenantID, ds); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, ds)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

// ErrNoSource is the error for an unknown or deleted data source.
var ErrNoSource = apperr.New(apperr.ENOTFOUND, "No such data source. It may have been deleted; copy the feed URL again from the Ferry app in Jira.")

// Get returns one data source; a deleted one is ErrNoSource.
func (s *Sources) Get(ctx context.Context, ps PropertyStore, tenantID, id string) (DataSource, error) {
	if !validID(id) {
		return DataSource{}, ErrNoSource
	}
	// Sources have a cache key space of their own: an id may be any word,
	// "list" and "settings" included.
	v, err := s.cachedOr(ctx, tenantID+"\x00ds\x00"+id, func(ctx context.Context) (any, error) {
		var ds DataSource
		found, err := ps.Get(ctx, sourcePrefix+id, &ds)
		if err != nil {
			return DataSource{}, err
		}
		if !found {
			return DataSource{}, ErrNoSource
		}
		ds.normalize()
		if ds.Deleted {
			if err := s.retire(ctx, ps, tenantID, ds); err != nil {
				return DataSource{}, err
			}
			return DataSource{}, ErrNoSource
		}
		return ds, nil
	})
	if err != nil {
		return DataSource{}, err
	}
	return v.(DataSource), nil
}

func validID(id string) bool {
	if len(id) < 4 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Input is what a user submits for a data source.
type Input struct {
	Name       string   `json:"name"`
	JQL        string   `json:"jql"`
	Fields     []string `json:"fields"`
	Tables     []string `json:"tables"`
	Visibility string   `json:"visibility"` // private (the default), groups or everyone
	Groups     []string `json:"groups"`     // with visibility groups
	// WorkingTime is the working calendar; null or absent for none.
	WorkingTime *WorkingTime `json:"workingTime"`
}

// Validate checks an input against the site's fields; user checks the JQL
// against Jira as the user, so Jira's own message reaches them. Group names
// are checked against Jira by the caller (App.checkGroups).
func (in *Input) Validate(ctx context.Context, user *jira.Client, known []jira.Field) error {
	in.Name = strings.TrimSpace(in.Name)
	in.JQL = strings.TrimSpace(in.JQL)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 100 {
		return apperr.Invalid("name", "Name the data source (1 to 100 characters).")
	}
	if in.JQL == "" || len(in.JQL) > 4000 {
		return apperr.Invalid("jql", "Enter a JQL query (at most 4000 characters), for example: project = ABC ORDER BY created DESC")
	}
	if len(in.Tables) == 0 {
		in.Tables = []string{TableIssues}
	}
	for _, t := range in.Tables {
		if !slices.Contains(TableNames(), t) {
			return apperr.Invalid("tables", "Unknown table %q: choose among %s.", t, strings.Join(TableNames(), ", "))
		}
	}
	slices.Sort(in.Tables)
	in.Tables = slices.Compact(in.Tables)
	if err := in.validateVisibility(); err != nil {
		return err
	}
	if err := in.validateWorkingTime(); err != nil {
		return err
	}
	if len(in.Fields) == 0 {
		return apperr.Invalid("fields", "Pick at least one field.")
	}
	if len(in.Fields) > 200 {
		return apperr.Invalid("fields", "Pick at most 200 fields.")
	}
	byID := map[string]bool{}
	for _, f := range known {
		byID[f.ID] = true
	}
	seen := map[string]bool{}
	var fields []string
	for _, f := range in.Fields {
		if !byID[f] {
			return apperr.Invalid("fields", "Jira has no field %q.", f)
		}
		if !seen[f] {
			seen[f] = true
			fields = append(fields, f)
		}
	}
	in.Fields = fields
	// A field that is not exportable would be a column of nothing: say why.
	for _, f := range known {
		if m := MapField(f); seen[f.ID] && !m.Exportable() {
			return apperr.Invalid("fields", "%s cannot be exported: %s", f.Name, m.Reason)
		}
	}
	if err := user.CheckJQL(ctx, in.JQL); err != nil {
		var je *jira.Error
		if errors.As(err, &je) && je.Status == 400 {
			return apperr.Invalid("jql", "Jira says: %s", strings.Join(je.Messages, " "))
		}
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira could not check the JQL right now; try again.")
	}
	return nil
}

// maxGroups bounds the group lists of a source and of the settings.
const maxGroups = 50

func (in *Input) validateVisibility() error {
	switch in.Visibility {
	case "":
		in.Visibility = VisibilityPrivate
	case VisibilityPrivate, VisibilityEveryone:
	case VisibilityGroups:
	default:
		return apperr.Invalid("visibility", "Choose who sees the data source: %q (only you), %q (the groups you name) or %q.",
			VisibilityPrivate, VisibilityGroups, VisibilityEveryone)
	}
	groups, err := cleanNames("groups", in.Groups, maxGroups)
	if err != nil {
		return err
	}
	if in.Visibility != VisibilityGroups {
		if len(groups) > 0 {
			return apperr.Invalid("groups", "Groups are named only when the data source is shared with groups.")
		}
		in.Groups = nil
		return nil
	}
	if len(groups) == 0 {
		return apperr.Invalid("groups", "Name at least one Jira group to share the data source with.")
	}
	in.Groups = groups
	return nil
}

// validateWorkingTime checks the calendar, if there is one.
func (in *Input) validateWorkingTime() error {
	if in.WorkingTime == nil {
		return nil
	}
	w := *in.WorkingTime // the caller's stays as sent
	if err := w.Validate(); err != nil {
		return err
	}
	in.WorkingTime = &w
	return nil
}

// cleanNames trims names, drops empty and repeated ones, and bounds them.
func cleanNames(field string, names []string, most int) ([]string, error) {
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || slices.Contains(out, n) {
			continue
		}
		if utf8.RuneCountInString(n) > 255 || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, apperr.Invalid(field, "%q is not a name Jira could have (at most 255 characters, no control characters).", n)
		}
		out = append(out, n)
	}
	if len(out) > most {
		return nil, apperr.Invalid(field, "Name at most %d.", most)
	}
	return out, nil
}

func newSourceID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Create stores a new data source owned by its creator; by is the creating
// user's accountId.
func (s *Sources) Create(ctx context.Context, ps PropertyStore, tenantID string, in Input, by string, now time.Time) (DataSource, error) {
	if err := in.validateVisibility(); err != nil {
		return DataSource{}, err
	}
	if err := in.validateWorkingTime(); err != nil {
		return DataSource{}, err
	}
	ds := DataSource{ID: newSourceID(), Name: in.Name, JQL: in.JQL, Fields: in.Fields, Tables: in.Tables,
		WorkingTime: in.WorkingTime, Owner: by, Visibility: in.Visibility, Groups: in.Groups,
		History: []Change{{Action: "created", By: by, At: now}}, Updated: now}
	return ds, s.save(ctx, ps, tenantID, ds)
}

// Restore stores a data source exactly as given (same id), for a demo that
// recreates its sample source in a freshly started simulated Jira.
func (s *Sources) Restore(ctx context.Context, ps PropertyStore, tenantID string, ds DataSource) error {
	if !validID(ds.ID) {
		return apperr.Invalid("id", "invalid data source id")
	}
	ds.normalize()
	return s.save(ctx, ps, tenantID, ds)
}

// Update edits a data source and appends to its history. Who may is the
// caller's to decide (viewer.mayEdit); the owner stays.
func (s *Sources) Update(ctx context.Context, ps PropertyStore, tenantID, id string, in Input, by string, now time.Time) (DataSource, error) {
	if err := in.validateVisibility(); err != nil {
		return DataSource{}, err
	}
	if err := in.validateWorkingTime(); err != nil {
		return DataSource{}, err
	}
	ds, err := s.Get(ctx, ps, tenantID, id)
	if err != nil {
		return ds, err
	}
	ds.Name, ds.JQL, ds.Fields, ds.Tables, ds.Updated = in.Name, in.JQL, in.Fields, in.Tables, now
	ds.WorkingTime = in.WorkingTime
	ds.Visibility, ds.Groups = in.Visibility, in.Groups
	ds.History = appendHistory(ds.History, Change{Action: "edited", By: by, At: now})
	return ds, s.save(ctx, ps, tenantID, ds)
}

// Transfer gives a data source to a new owner (a Jira administrator's
// decision, recorded in its history).
func (s *Sources) Transfer(ctx context.Context, ps PropertyStore, tenantID, id, to, by string, now time.Time) (DataSource, error) {
	ds, err := s.Get(ctx, ps, tenantID, id)
	if err != nil {
		return ds, err
	}
	if ds.Owner == to {
		return ds, nil
	}
	ds.Owner, ds.Updated = to, now
	ds.History = appendHistory(ds.History, Change{Action: "transferred", By: by, To: to, At: now})
	return ds, s.save(ctx, ps, tenantID, ds)
}

// deletedPrefix names the app properties that keep deleted sources' history.
const deletedPrefix = "dsh."

// DeletedSource is what stays of a deleted data source: its name, last
// owner and history. The definition (JQL, fields, tables, sharing) is gone.
type DeletedSource struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Owner   string    `json:"owner"`
	History []Change  `json:"history"`
	Deleted time.Time `json:"deleted"`
}

// Delete removes a data source: its history entry is written first (to a
// property of its own), then the definition is deleted from the site's
// storage. Its feed stops at once. Who may is the caller's to decide.
func (s *Sources) Delete(ctx context.Context, ps PropertyStore, tenantID, id, by string, now time.Time) error {
	ds, err := s.Get(ctx, ps, tenantID, id)
	if err != nil {
		return err
	}
	ds.History = appendHistory(ds.History, Change{Action: "deleted", By: by, At: now})
	ds.Updated = now
	return s.retire(ctx, ps, tenantID, ds)
}

// retire writes a deleted source's history and then deletes its definition:
// a failure in between leaves the definition in place (nothing is lost, and
// deleting again finishes the job).
func (s *Sources) retire(ctx context.Context, ps PropertyStore, tenantID string, ds DataSource) error {
	gone := DeletedSource{ID: ds.ID, Name: ds.Name, Owner: ds.Owner, History: ds.History, Deleted: ds.Updated}
	if err := ps.Put(ctx, deletedPrefix+ds.ID, gone); err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira did not save the data source's history; nothing was deleted. Try again.")
	}
	if err := ps.Delete(ctx, sourcePrefix+ds.ID); err != nil {
		s.forget(tenantID)
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira did not delete the data source; try again.")
	}
	s.forget(tenantID)
	return nil
}

// Deleted lists what stays of deleted data sources, newest first.
func (s *Sources) Deleted(ctx context.Context, ps PropertyStore) ([]DeletedSource, error) {
	keys, err := ps.Keys(ctx, deletedPrefix)
	if err != nil {
		return nil, err
	}
	var out []DeletedSource
	for _, k := range keys {
		var d DeletedSource
		found, err := ps.Get(ctx, k, &d)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Deleted.After(out[j].Deleted) })
	return out, nil
}

// appendHistory keeps the newest 100 entries, so a property stays under
// Jira's 32 KB limit however often a source is edited.
func appendHistory(h []Change, c Change) []Change {
	h = append(h, c)
	if len(h) > 100 {
		h = h[len(h)-100:]
	}
	return h
}

func (s *Sources) save(ctx context.Context, ps PropertyStore, tenantID string, ds DataSource) error {
	b, _ := json.Marshal(ds)
	if len(b) > maxPropertyBytes {
		return apperr.Invalid("fields", "This data source is too large to store in Jira (%d KB of 32 KB); pick fewer fields or shorten the JQL.", len(b)>>10)
	}
	if err := ps.Put(ctx, sourcePrefix+ds.ID, ds); err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira did not save the data source; try again.")
	}
	s.forget(tenantID)
	return nil
}
