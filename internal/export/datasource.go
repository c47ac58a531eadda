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
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	JQL     string    `json:"jql"`
	Fields  []string  `json:"fields"` // Jira field ids, e.g. "summary", "customfield_10010"
	Tables  []string  `json:"tables"`
	Deleted bool      `json:"deleted,omitempty"`
	History []Change  `json:"history"`
	Updated time.Time `json:"updated"`
}

// Change is one entry of a data source's history. Who is an accountId kept
// in the customer's own Jira; the app shows a display name fetched at view time.
type Change struct {
	Action string    `json:"action"` // created | edited | deleted
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Settings are a site admin's choices.
type Settings struct {
	CreatorGroups []string `json:"creatorGroups"` // groups allowed to create data sources
	TokenMaxDays  int      `json:"tokenMaxDays"`  // access token lifetime policy
}

// DefaultCreatorGroup may create data sources until an admin says otherwise.
const DefaultCreatorGroup = "jira-administrators"

// Sources reads and writes data sources through a tenant's PropertyStore.
// What it reads is kept in memory for TTL; an entry past TTL is still
// answered while it is refreshed in the background (up to staleMax), so
// that no feed request waits for Jira to re-read a source it just read.
// A change made through this Sources takes effect at once; one made on
// another replica within TTL plus one refresh.
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

// List returns the tenant's data sources (not deleted), sorted by name.
func (s *Sources) List(ctx context.Context, ps PropertyStore, tenantID string) ([]DataSource, error) {
	v, err := s.cachedOr(ctx, tenantID+"\x00list", func(ctx context.Context) (any, error) { return s.list(ctx, ps) })
	if err != nil {
		return nil, err
	}
	return v.([]DataSource), nil
}

func (s *Sources) list(ctx context.Context, ps PropertyStore) ([]DataSource, error) {
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
		if found && !ds.Deleted { // not found: deleted between list and get
			out = append(out, ds)
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out, nil
}

// ErrNoSource is the error for an unknown or deleted data source.
var ErrNoSource = apperr.New(apperr.ENOTFOUND, "No such data source. It may have been deleted; copy the feed URL again from the Ferry app in Jira.")

// Get returns one data source, deleted ones included (for their history).
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
	Name   string   `json:"name"`
	JQL    string   `json:"jql"`
	Fields []string `json:"fields"`
	Tables []string `json:"tables"`
}

// Validate checks an input against the site's fields; user checks the JQL
// against Jira as the user, so Jira's own message reaches them.
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
		if t != TableIssues && t != TableChangelog {
			return apperr.Invalid("tables", "Unknown table %q: choose Issues and/or Changelog.", t)
		}
	}
	slices.Sort(in.Tables)
	in.Tables = slices.Compact(in.Tables)
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
	if err := user.CheckJQL(ctx, in.JQL); err != nil {
		var je *jira.Error
		if errors.As(err, &je) && je.Status == 400 {
			return apperr.Invalid("jql", "Jira says: %s", strings.Join(je.Messages, " "))
		}
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira could not check the JQL right now; try again.")
	}
	return nil
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

// Create stores a new data source; by is the creating user's accountId.
func (s *Sources) Create(ctx context.Context, ps PropertyStore, tenantID string, in Input, by string, now time.Time) (DataSource, error) {
	ds := DataSource{ID: newSourceID(), Name: in.Name, JQL: in.JQL, Fields: in.Fields, Tables: in.Tables,
		History: []Change{{Action: "created", By: by, At: now}}, Updated: now}
	return ds, s.save(ctx, ps, tenantID, ds)
}

// Restore stores a data source exactly as given (same id), for a demo that
// recreates its sample source in a freshly started simulated Jira.
func (s *Sources) Restore(ctx context.Context, ps PropertyStore, tenantID string, ds DataSource) error {
	if !validID(ds.ID) {
		return apperr.Invalid("id", "invalid data source id")
	}
	return s.save(ctx, ps, tenantID, ds)
}

// Update edits a data source and appends to its history.
func (s *Sources) Update(ctx context.Context, ps PropertyStore, tenantID, id string, in Input, by string, now time.Time) (DataSource, error) {
	ds, err := s.Get(ctx, ps, tenantID, id)
	if err != nil {
		return ds, err
	}
	if ds.Deleted {
		return ds, ErrNoSource
	}
	ds.Name, ds.JQL, ds.Fields, ds.Tables, ds.Updated = in.Name, in.JQL, in.Fields, in.Tables, now
	ds.History = appendHistory(ds.History, Change{Action: "edited", By: by, At: now})
	return ds, s.save(ctx, ps, tenantID, ds)
}

// Delete marks a data source deleted; its feed stops at once and its history
// stays readable to admins.
func (s *Sources) Delete(ctx context.Context, ps PropertyStore, tenantID, id, by string, now time.Time) error {
	ds, err := s.Get(ctx, ps, tenantID, id)
	if err != nil {
		return err
	}
	if ds.Deleted {
		return nil
	}
	ds.Deleted, ds.Updated = true, now
	ds.History = appendHistory(ds.History, Change{Action: "deleted", By: by, At: now})
	return s.save(ctx, ps, tenantID, ds)
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

// Settings returns the site's admin settings, with defaults.
func (s *Sources) Settings(ctx context.Context, ps PropertyStore, tenantID string, defaultMaxDays int) (Settings, error) {
	v, err := s.cachedOr(ctx, tenantID+"\x00"+settingsKey, func(ctx context.Context) (any, error) {
		st := Settings{CreatorGroups: []string{DefaultCreatorGroup}, TokenMaxDays: defaultMaxDays}
		if _, err := ps.Get(ctx, settingsKey, &st); err != nil {
			return st, err
		}
		return st, nil
	})
	if err != nil {
		return Settings{CreatorGroups: []string{DefaultCreatorGroup}, TokenMaxDays: defaultMaxDays}, err
	}
	st := v.(Settings)
	if st.TokenMaxDays <= 0 || st.TokenMaxDays > defaultMaxDays {
		st.TokenMaxDays = defaultMaxDays
	}
	return st, nil
}

// SaveSettings stores an admin's settings.
func (s *Sources) SaveSettings(ctx context.Context, ps PropertyStore, tenantID string, st Settings, maxDays int) error {
	if st.TokenMaxDays < 1 || st.TokenMaxDays > maxDays {
		return apperr.Invalid("tokenMaxDays", "Token lifetime must be between 1 and %d days.", maxDays)
	}
	var groups []string
	for _, g := range st.CreatorGroups {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return apperr.Invalid("creatorGroups", "Name at least one group that may create data sources.")
	}
	st.CreatorGroups = groups
	if err := ps.Put(ctx, settingsKey, st); err != nil {
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira did not save the settings; try again.")
	}
	s.forget(tenantID)
	return nil
}

// CanCreate reports whether a user in groups may create data sources.
func (st Settings) CanCreate(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(st.CreatorGroups, g) || g == DefaultCreatorGroup || g == "site-admins" {
			return true
		}
	}
	return false
}
