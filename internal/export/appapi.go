package export

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/jira"
	"ferry/internal/tenant"
)

// App serves the JSON API behind the app's pages in Jira: /app-api/… behind
// Connect's RequireAPI, and the same operations at /forge/app-api/… behind a
// verified Forge Invocation Token, called through @forge/bridge invokeRemote
// from the Custom UI. Either way the tenant and user come from a verified
// token (a Caller), never from the request body; people are shown by
// display name fetched from Jira at view time, never by email address.
type App struct {
	Log      *slog.Logger
	Platform Platform // Connect or Forge, per installation (Platforms)
	Sources  *Sources
	Tokens   *Tokens
	Feeds    *Feeds // for field lists and feed URLs
	MaxDays  int
	BaseURL  string
	Now      func() time.Time
	// Deletion, when set, lets a Jira administrator ask for the immediate
	// deletion of the site's data from the admin page (deletion.go).
	Deletion   TenantDeletion
	PurgeGrace time.Duration // FERRY_PURGE_GRACE, for the admin page to say
}

func (a *App) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// Caller is who a call to the app's API comes from, as a verified Connect
// JWT or Forge Invocation Token names them.
type Caller struct {
	Installation  tenant.Installation
	AccountID     string // raw accountId: memory only, to act as the user; never stored or logged
	UserPseudonym string // what may be stored and logged
}

// TenantID is the tenant every store query of the call is scoped to.
func (c Caller) TenantID() string { return c.Installation.TenantID }

// CallerOf reads the verified caller from a request's context.
type CallerOf func(ctx context.Context) (Caller, bool)

// ConnectCaller reads the principal Connect's RequireAPI verified.
func ConnectCaller(ctx context.Context) (Caller, bool) {
	p, ok := atlassian.PrincipalFrom(ctx)
	return Caller{Installation: p.Installation, AccountID: p.AccountID, UserPseudonym: p.UserPseudonym}, ok
}

// appCtx is one authenticated API call.
type appCtx struct {
	p     Caller
	app   *jira.Client // as the app
	user  *jira.Client // as the signed-in user
	props PropertyStore
}

func (a *App) ctx(r *http.Request, who CallerOf) (appCtx, error) {
	ctx := r.Context()
	p, ok := who(ctx)
	if !ok {
		return appCtx{}, apperr.New(apperr.EUNAUTHORIZED, "open Ferry from Jira")
	}
	app, err := a.Platform.AppClient(ctx, p.Installation)
	if err != nil {
		return appCtx{}, err
	}
	user, err := a.Platform.UserClient(ctx, p.Installation, p.AccountID)
	if err != nil {
		return appCtx{}, err
	}
	props, err := a.Platform.Properties(ctx, p.Installation)
	if err != nil {
		return appCtx{}, err
	}
	// The app's pages spend from the same quota as the feeds.
	app.Limits, user.Limits = a.Feeds.tenantLimits(p.TenantID()), a.Feeds.tenantLimits(p.TenantID())
	return appCtx{p: p, app: app, user: user, props: props}, nil
}

// handle adapts a JSON handler: errors become problem+json.
func (a *App) handle(who CallerOf, fn func(w http.ResponseWriter, r *http.Request, c appCtx) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(jira.WithSpend(r.Context(), "app", nil))
		c, err := a.ctx(r, who)
		if err == nil {
			err = fn(w, r, c)
		}
		if err != nil {
			var je *jira.Error
			if errors.As(err, &je) {
				err = apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira answered %d; try again.", je.Status)
			}
			apperr.Write(w, r, a.Log, err)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apperr.Invalid("body", "The request body is not valid JSON for this call: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// role is what the signed-in user may do.
type role struct {
	Admin     bool
	CanCreate bool
	Settings  Settings
}

func (a *App) role(r *http.Request, c appCtx) (role, error) {
	st, err := a.Sources.Settings(r.Context(), c.props, c.p.TenantID(), a.MaxDays)
	if err != nil {
		return role{}, err
	}
	groups, err := c.app.UserGroups(r.Context(), c.p.AccountID)
	if err != nil {
		return role{}, err
	}
	admin := slices.Contains(groups, DefaultCreatorGroup) || slices.Contains(groups, "site-admins")
	return role{Admin: admin, CanCreate: admin || st.CanCreate(groups), Settings: st}, nil
}

type sourceJSON struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	JQL     string        `json:"jql"`
	Fields  []string      `json:"fields"`
	Tables  []string      `json:"tables"`
	Updated time.Time     `json:"updated"`
	FeedURL string        `json:"feedUrl"`
	CSVURL  string        `json:"csvUrl"`
	History []historyJSON `json:"history,omitempty"`
}

type historyJSON struct {
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	By     string    `json:"by"` // display name, fetched now
}

func (a *App) sourceOut(ds DataSource) sourceJSON {
	base := strings.TrimSuffix(a.BaseURL, "/")
	return sourceJSON{ID: ds.ID, Name: ds.Name, JQL: ds.JQL, Fields: ds.Fields, Tables: ds.Tables, Updated: ds.Updated,
		FeedURL: base + "/odata/" + ds.ID + "/", CSVURL: base + "/export/" + ds.ID + "/issues.csv"}
}

// Routes registers the API under prefix (/app-api for Connect,
// /forge/app-api for Forge) behind auth, which verifies the token that who
// then reads.
func (a *App) Routes(mux *http.ServeMux, prefix string, auth func(http.Handler) http.Handler, who CallerOf) {
	h := func(method, path string, fn func(http.ResponseWriter, *http.Request, appCtx) error) {
		mux.Handle(method+" "+prefix+path, auth(a.handle(who, fn)))
	}
	h("GET", "/me", a.me)
	h("GET", "/fields", a.fields)
	h("GET", "/sources", a.listSources)
	h("POST", "/sources", a.createSource)
	h("GET", "/sources/{id}", a.getSource)
	h("PUT", "/sources/{id}", a.updateSource)
	h("DELETE", "/sources/{id}", a.deleteSource)
	h("GET", "/tokens", a.listTokens)
	h("POST", "/tokens", a.createToken)
	h("DELETE", "/tokens/{id}", a.revokeToken)
	h("GET", "/settings", a.getSettings)
	h("PUT", "/settings", a.putSettings)
	h("GET", "/quota", a.getQuota)
	h("GET", "/deletion", a.getDeletion)
	h("POST", "/deletion", a.requestDeletion)
}

func (a *App) me(w http.ResponseWriter, r *http.Request, c appCtx) error {
	me, err := c.user.Myself(r.Context())
	if err != nil {
		return err
	}
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	lic, err := a.Platform.LicenseActive(r.Context(), c.p.Installation)
	if err != nil {
		lic = false
	}
	return writeJSON(w, 200, map[string]any{"displayName": me.DisplayName, "admin": ro.Admin, "canCreate": ro.CanCreate,
		"licensed": lic, "tokenMaxDays": ro.Settings.TokenMaxDays, "maxActiveTokens": MaxActiveTokens})
}

type fieldJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Collection bool   `json:"collection"`
	Custom     bool   `json:"custom"`
}

func (a *App) fields(w http.ResponseWriter, r *http.Request, c appCtx) error {
	list, err := a.Feeds.siteFields(r.Context(), c.p.TenantID(), c.app)
	if err != nil {
		return err
	}
	out := make([]fieldJSON, 0, len(list))
	for _, f := range list {
		col := fieldColumn(f)
		out = append(out, fieldJSON{ID: f.ID, Name: f.Name, Type: strings.TrimPrefix(col.Edm, "Edm."), Collection: col.Collection, Custom: f.Custom})
	}
	slices.SortFunc(out, func(x, y fieldJSON) int { return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)) })
	return writeJSON(w, 200, out)
}

func (a *App) listSources(w http.ResponseWriter, r *http.Request, c appCtx) error {
	list, err := a.Sources.List(r.Context(), c.props, c.p.TenantID())
	if err != nil {
		return err
	}
	out := make([]sourceJSON, 0, len(list))
	for _, ds := range list {
		out = append(out, a.sourceOut(ds))
	}
	return writeJSON(w, 200, out)
}

func (a *App) getSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	ds, err := a.Sources.Get(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := a.sourceOut(ds)
	// Who made each change, by display name as Jira shows it today.
	var ids []string
	for _, h := range ds.History {
		if h.By != "" && !slices.Contains(ids, h.By) {
			ids = append(ids, h.By)
		}
	}
	names, err := c.app.Users(r.Context(), ids)
	if err != nil {
		names = nil
	}
	for i := len(ds.History) - 1; i >= 0; i-- {
		h := ds.History[i]
		by := "Unknown user"
		if u, ok := names[h.By]; ok {
			by = u.DisplayName
		}
		out.History = append(out.History, historyJSON{Action: h.Action, At: h.At, By: by})
	}
	return writeJSON(w, 200, out)
}

func (a *App) mayCreate(r *http.Request, c appCtx) error {
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	if !ro.CanCreate {
		return apperr.New(apperr.EFORBIDDEN, "Your Jira administrator has not allowed your groups to create or change data sources.")
	}
	return nil
}

func (a *App) sourceInput(r *http.Request, c appCtx) (Input, error) {
	var in Input
	if err := decodeJSON(r, &in); err != nil {
		return in, err
	}
	known, err := a.Feeds.siteFields(r.Context(), c.p.TenantID(), c.app)
	if err != nil {
		return in, err
	}
	return in, in.Validate(r.Context(), c.user, known)
}

func (a *App) createSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.mayCreate(r, c); err != nil {
		return err
	}
	in, err := a.sourceInput(r, c)
	if err != nil {
		return err
	}
	ds, err := a.Sources.Create(r.Context(), c.props, c.p.TenantID(), in, c.p.AccountID, a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.sourceOut(ds))
}

func (a *App) updateSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.mayCreate(r, c); err != nil {
		return err
	}
	in, err := a.sourceInput(r, c)
	if err != nil {
		return err
	}
	ds, err := a.Sources.Update(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"), in, c.p.AccountID, a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, a.sourceOut(ds))
}

func (a *App) deleteSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.mayCreate(r, c); err != nil {
		return err
	}
	if err := a.Sources.Delete(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"), c.p.AccountID, a.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenJSON struct {
	ID          string     `json:"id"`
	Label       string     `json:"label"`
	Hint        string     `json:"hint"`
	Created     time.Time  `json:"created"`
	Expires     time.Time  `json:"expires"`
	LastUsedDay string     `json:"lastUsedDay,omitempty"`
	Revoked     *time.Time `json:"revoked,omitempty"`
	Token       string     `json:"token,omitempty"` // only in the answer that creates it
}

func tokenOut(t Token) tokenJSON {
	return tokenJSON{ID: t.ID, Label: t.Label, Hint: t.Hint, Created: t.CreatedAt, Expires: t.ExpiresAt, LastUsedDay: t.LastUsedDay, Revoked: t.RevokedAt}
}

func (a *App) maxDays(r *http.Request, c appCtx) int {
	st, err := a.Sources.Settings(r.Context(), c.props, c.p.TenantID(), a.MaxDays)
	if err != nil {
		return a.MaxDays
	}
	return st.TokenMaxDays
}

func (a *App) listTokens(w http.ResponseWriter, r *http.Request, c appCtx) error {
	list, err := a.Tokens.List(r.Context(), c.p.TenantID(), c.p.AccountID, a.maxDays(r, c))
	if err != nil {
		return err
	}
	out := make([]tokenJSON, 0, len(list))
	for _, t := range list {
		out = append(out, tokenOut(t))
	}
	return writeJSON(w, 200, out)
}

func (a *App) createToken(w http.ResponseWriter, r *http.Request, c appCtx) error {
	var in struct {
		Label string `json:"label"`
		Days  int    `json:"days"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	plain, t, err := a.Tokens.Create(r.Context(), c.p.TenantID(), c.p.AccountID, in.Label, in.Days, a.maxDays(r, c))
	if err != nil {
		return err
	}
	out := tokenOut(t)
	out.Token = plain
	return writeJSON(w, http.StatusCreated, out)
}

func (a *App) revokeToken(w http.ResponseWriter, r *http.Request, c appCtx) error {
	if err := a.Tokens.Revoke(r.Context(), c.p.TenantID(), c.p.AccountID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *App) getSettings(w http.ResponseWriter, r *http.Request, c appCtx) error {
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	if !ro.Admin {
		return apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can see Ferry's settings.")
	}
	return writeJSON(w, 200, map[string]any{"creatorGroups": ro.Settings.CreatorGroups, "tokenMaxDays": ro.Settings.TokenMaxDays, "maxTokenMaxDays": a.MaxDays})
}

func (a *App) putSettings(w http.ResponseWriter, r *http.Request, c appCtx) error {
	ro, err := a.role(r, c)
	if err != nil {
		return err
	}
	if !ro.Admin {
		return apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can change Ferry's settings.")
	}
	var st Settings
	if err := decodeJSON(r, &st); err != nil {
		return err
	}
	if err := a.Sources.SaveSettings(r.Context(), c.props, c.p.TenantID(), st, a.MaxDays); err != nil {
		return err
	}
	return writeJSON(w, 200, st)
}
