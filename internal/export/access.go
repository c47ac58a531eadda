package export

import (
	"context"
	"slices"
	"sync"
	"time"

	"ferry/internal/jira"
)

// Who may do what, in one place. A Jira administrator is whoever Jira says
// holds the ADMINISTER global permission (GET /rest/api/3/mypermissions,
// asked as that user) — never a group name. Administrators may do
// everything; the site's settings say who else may create data sources and
// who may create tokens and pull feeds; a data source's owner and
// visibility say who sees it and who changes it:
//
//	view or pull a source    administrator, owner, or per its visibility
//	                         (everyone; members of its groups)
//	edit, delete             administrator or owner
//	transfer ownership       administrator
//	create a source          administrator or Settings.Creators
//	create a token, pull     administrator or Settings.Exporters
//	all tokens, revoke any   administrator
//
// Jira is asked about groups and permissions only when the answer matters.

// viewer is one user of a site, as far as access goes.
type viewer struct {
	AccountID string
	Settings  Settings

	admin  func() (bool, error)
	groups func() ([]string, error)
}

// memo runs f once and keeps its answer.
func memo[T any](f func() (T, error)) func() (T, error) {
	var once sync.Once
	var v T
	var err error
	return func() (T, error) {
		once.Do(func() { v, err = f() })
		return v, err
	}
}

// newViewer asks Jira lazily: whether accountID is an administrator as user
// (the client acting as that user), its groups as app.
func newViewer(ctx context.Context, accountID string, st Settings, app, user *jira.Client) *viewer {
	return &viewer{AccountID: accountID, Settings: st,
		admin: memo(func() (bool, error) {
			have, err := user.MyPermissions(ctx, jira.GlobalAdminister)
			return have[jira.GlobalAdminister], err
		}),
		groups: memo(func() ([]string, error) { return app.UserGroups(ctx, accountID) }),
	}
}

func (v *viewer) isAdmin() (bool, error) { return v.admin() }

// anyOf is true when one of the checks is; later checks are not asked.
func anyOf(checks ...func() (bool, error)) (bool, error) {
	for _, c := range checks {
		ok, err := c()
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func (v *viewer) mayCreate() (bool, error) {
	return anyOf(func() (bool, error) { return v.Settings.Creators.includes(v.AccountID, v.groups) }, v.admin)
}

func (v *viewer) mayExport() (bool, error) {
	return anyOf(func() (bool, error) { return v.Settings.Exporters.includes(v.AccountID, v.groups) }, v.admin)
}

// mayView: the owner, per the source's visibility, or an administrator.
func (v *viewer) mayView(ds DataSource) (bool, error) {
	return anyOf(func() (bool, error) { return v.shares(ds) }, v.admin)
}

// shares is whether the source is the viewer's or shared with them,
// administrators aside.
func (v *viewer) shares(ds DataSource) (bool, error) {
	switch {
	case ds.Owner == v.AccountID || ds.Visibility == VisibilityEveryone:
		return true, nil
	case ds.Visibility == VisibilityGroups:
		return Audience{Groups: ds.Groups}.includes(v.AccountID, v.groups)
	}
	return false, nil
}

func (v *viewer) mayEdit(ds DataSource) (bool, error) {
	if ds.Owner == v.AccountID {
		return true, nil
	}
	return v.admin()
}

// people caches, per site and account, what Jira said about a feed's token
// owner (groups and administrator), so that a dashboard refreshing page
// after page does not ask Jira every time. The app's pages ask afresh.
type people struct {
	mu sync.Mutex
	m  map[string]personEntry
}

type personEntry struct {
	admin  *bool
	groups []string
	at     time.Time
}

// peopleTTL bounds how long a change of groups or permissions in Jira
// takes to reach the feeds.
const peopleTTL = 30 * time.Second

// cached wraps a viewer's questions with the cache.
func (pc *people) cached(tenantID string, v *viewer) *viewer {
	key := tenantID + "\x00" + v.AccountID
	get := func() (personEntry, bool) {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		e, ok := pc.m[key]
		if ok && time.Since(e.at) > peopleTTL {
			delete(pc.m, key)
			return personEntry{}, false
		}
		return e, ok
	}
	set := func(f func(*personEntry)) {
		pc.mu.Lock()
		defer pc.mu.Unlock()
		if pc.m == nil {
			pc.m = map[string]personEntry{}
		}
		if len(pc.m) > 100_000 {
			clear(pc.m) // bounded: a cache, not a record
		}
		e, ok := pc.m[key]
		if !ok {
			e.at = time.Now()
		}
		f(&e)
		pc.m[key] = e
	}
	admin, groups := v.admin, v.groups
	v.admin = memo(func() (bool, error) {
		if e, ok := get(); ok && e.admin != nil {
			return *e.admin, nil
		}
		ok, err := admin()
		if err == nil {
			set(func(e *personEntry) { e.admin = &ok })
		}
		return ok, err
	})
	v.groups = memo(func() ([]string, error) {
		if e, ok := get(); ok && e.groups != nil {
			return slices.Clone(e.groups), nil
		}
		gs, err := groups()
		if err == nil {
			set(func(e *personEntry) { e.groups = nonNil(slices.Clone(gs)) })
		}
		return gs, err
	})
	return v
}
