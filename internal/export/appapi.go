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

// viewer is the signed-in user as far as access goes; Jira is asked afresh
// on every call (no cache), so a change in Jira shows at once.
func (a *App) viewer(r *http.Request, c appCtx) (*viewer, error) {
	st, err := a.Sources.Settings(r.Context(), c.props, c.p.TenantID(), a.MaxDays)
	if err != nil {
		return nil, err
	}
	return newViewer(r.Context(), c.p.AccountID, st, c.app, c.user), nil
}

// role is what the signed-in user may do, all of it asked.
type role struct {
	Admin, CanCreate, CanExport bool
	Settings                    Settings
	v                           *viewer
}

func (a *App) role(r *http.Request, c appCtx) (role, error) {
	v, err := a.viewer(r, c)
	if err != nil {
		return role{}, err
	}
	ro := role{Settings: v.Settings, v: v}
	if ro.Admin, err = v.isAdmin(); err != nil {
		return ro, err
	}
	if ro.CanCreate, err = v.mayCreate(); err != nil {
		return ro, err
	}
	if ro.CanExport, err = v.mayExport(); err != nil {
		return ro, err
	}
	return ro, nil
}

// Refusals the app's pages show.
var (
	errMayNotCreate   = apperr.New(apperr.EFORBIDDEN, "Your Jira administrator has not allowed you to create data sources.")
	errMayNotEdit     = apperr.New(apperr.EFORBIDDEN, "Only the data source's owner and Jira administrators can change or delete it.")
	errMayNotExport   = apperr.New(apperr.EFORBIDDEN, "Your Jira administrator has not allowed you to create access tokens or pull feeds. Ask a Jira administrator to add you, or one of your groups, on Ferry's admin page.")
	errAdminsOnly     = apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can do this.")
	errSettingsAdmins = apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can see and change Ferry's settings.")
)

type personJSON struct {
	AccountID   string `json:"accountId"`
	DisplayName string `json:"displayName"` // fetched from Jira now, never stored
}

type sourceJSON struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	JQL         string        `json:"jql"`
	Fields      []string      `json:"fields"`
	Tables      []string      `json:"tables"`
	WorkingTime *WorkingTime  `json:"workingTime"`
	Updated     time.Time     `json:"updated"`
	FeedURL     string        `json:"feedUrl"`
	CSVURL      string        `json:"csvUrl"`
	Owner       personJSON    `json:"owner"`
	Visibility  string        `json:"visibility"`
	Groups      []string      `json:"groups"`
	CanEdit     bool          `json:"canEdit"`
	History     []historyJSON `json:"history,omitempty"`
}

type historyJSON struct {
	Action string    `json:"action"`
	At     time.Time `json:"at"`
	By     string    `json:"by"`           // display name, fetched now
	To     string    `json:"to,omitempty"` // the new owner's, for transferred
}

func (a *App) sourceOut(ds DataSource, names map[string]string, canEdit bool) sourceJSON {
	base := strings.TrimSuffix(a.BaseURL, "/")
	groups := ds.Groups
	if groups == nil {
		groups = []string{}
	}
	return sourceJSON{ID: ds.ID, Name: ds.Name, JQL: ds.JQL, Fields: ds.Fields, Tables: ds.Tables, WorkingTime: ds.WorkingTime, Updated: ds.Updated,
		FeedURL: base + "/odata/" + ds.ID + "/", CSVURL: base + "/export/" + ds.ID + "/issues.csv",
		Owner: personJSON{AccountID: ds.Owner, DisplayName: nameOf(names, ds.Owner)}, Visibility: ds.Visibility,
		Groups: groups, CanEdit: canEdit}
}

// names fetches display names for accountIds from Jira now (P10: never
// stored, never an email address). Jira being unable to answer only costs
// the names.
func (a *App) names(r *http.Request, c appCtx, ids ...string) map[string]string {
	var want []string
	for _, id := range ids {
		if id != "" && !slices.Contains(want, id) {
			want = append(want, id)
		}
	}
	out := map[string]string{}
	if len(want) == 0 {
		return out
	}
	users, err := c.app.Users(r.Context(), want)
	if err != nil {
		return out
	}
	for id, u := range users {
		out[id] = u.DisplayName
	}
	return out
}

func nameOf(names map[string]string, id string) string {
	if n, ok := names[id]; ok && n != "" {
		return n
	}
	return "Unknown user"
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
	h("GET", "/groups", a.findGroups)
	h("GET", "/sources", a.listSources)
	h("POST", "/sources", a.createSource)
	h("GET", "/sources/{id}", a.getSource)
	h("PUT", "/sources/{id}", a.updateSource)
	h("DELETE", "/sources/{id}", a.deleteSource)
	h("PUT", "/sources/{id}/owner", a.transferSource)
	h("GET", "/tokens", a.listTokens)
	h("POST", "/tokens", a.createToken)
	h("DELETE", "/tokens/{id}", a.revokeToken)
	h("GET", "/settings", a.getSettings)
	h("PUT", "/settings", a.putSettings)
	h("GET", "/quota", a.getQuota)
	h("GET", "/users", a.findUsers)
	h("GET", "/admin/tokens", a.listAllTokens)
	h("DELETE", "/admin/tokens/{id}", a.revokeAnyToken)
	h("DELETE", "/admin/users/{accountId}/tokens", a.revokeUsersTokens)
	h("GET", "/admin/token-history", a.tokenHistory)
	h("GET", "/admin/deleted-sources", a.deletedSources)
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
	projects := []string{}
	for _, p := range ro.Settings.Projects {
		projects = append(projects, p.Key)
	}
	return writeJSON(w, 200, map[string]any{"displayName": me.DisplayName, "admin": ro.Admin, "canCreate": ro.CanCreate,
		"canExport": ro.CanExport, "exportProjects": projects,
		"licensed": lic, "tokenMaxDays": ro.Settings.TokenMaxDays, "maxActiveTokens": MaxActiveTokens})
}

type fieldJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Collection bool   `json:"collection"`
	Custom     bool   `json:"custom"`
	// What the field picker shows of the field's support (fields.go).
	Exportable bool              `json:"exportable"`
	Reason     string            `json:"reason,omitempty"`
	Note       string            `json:"note,omitempty"`
	Columns    []fieldColumnJSON `json:"columns"`
}

func (a *App) fields(w http.ResponseWriter, r *http.Request, c appCtx) error {
	list, err := a.Feeds.siteFields(r.Context(), c.p.TenantID(), c.app)
	if err != nil {
		return err
	}
	out := make([]fieldJSON, 0, len(list))
	for _, f := range list {
		out = append(out, fieldInfo(f))
	}
	slices.SortFunc(out, func(x, y fieldJSON) int { return strings.Compare(strings.ToLower(x.Name), strings.ToLower(y.Name)) })
	return writeJSON(w, 200, out)
}

// listSources lists the sources the user may see.
func (a *App) listSources(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	list, err := a.Sources.List(r.Context(), c.props, c.p.TenantID())
	if err != nil {
		return err
	}
	var shown []DataSource
	var owners []string
	for _, ds := range list {
		ok, err := v.mayView(ds)
		if err != nil {
			return err
		}
		if ok {
			shown = append(shown, ds)
			owners = append(owners, ds.Owner)
		}
	}
	names := a.names(r, c, owners...)
	out := make([]sourceJSON, 0, len(shown))
	for _, ds := range shown {
		edit, err := v.mayEdit(ds)
		if err != nil {
			return err
		}
		out = append(out, a.sourceOut(ds, names, edit))
	}
	return writeJSON(w, 200, out)
}

// visibleSource is the source named in the path if the user may see it;
// one they may not is as good as absent.
func (a *App) visibleSource(r *http.Request, c appCtx, v *viewer) (DataSource, error) {
	ds, err := a.Sources.Get(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"))
	if err != nil {
		return ds, err
	}
	ok, err := v.mayView(ds)
	if err != nil {
		return ds, err
	}
	if !ok {
		return ds, ErrNoSource
	}
	return ds, nil
}

func (a *App) getSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	ds, err := a.visibleSource(r, c, v)
	if err != nil {
		return err
	}
	edit, err := v.mayEdit(ds)
	if err != nil {
		return err
	}
	// Who made each change, by display name as Jira shows it today.
	ids := []string{ds.Owner}
	for _, h := range ds.History {
		ids = append(ids, h.By, h.To)
	}
	names := a.names(r, c, ids...)
	out := a.sourceOut(ds, names, edit)
	out.History = historyOut(ds.History, names)
	return writeJSON(w, 200, out)
}

// historyOut lists changes newest first, people by display name.
func historyOut(h []Change, names map[string]string) []historyJSON {
	out := make([]historyJSON, 0, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		e := historyJSON{Action: h[i].Action, At: h[i].At, By: nameOf(names, h[i].By)}
		if h[i].To != "" {
			e.To = nameOf(names, h[i].To)
		}
		out = append(out, e)
	}
	return out
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
	if err := in.Validate(r.Context(), c.user, known); err != nil {
		return in, err
	}
	in.Groups, err = a.checkGroups(r, c, "groups", in.Groups)
	return in, err
}

// checkGroups makes sure every named group exists in Jira and returns the
// names as Jira spells them.
func (a *App) checkGroups(r *http.Request, c appCtx, field string, groups []string) ([]string, error) {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		found, err := c.app.FindGroups(r.Context(), g, 50)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(found, func(f string) bool { return strings.EqualFold(f, g) })
		if i < 0 {
			return nil, apperr.Invalid(field, "Jira has no group named %q.", g)
		}
		if !slices.Contains(out, found[i]) {
			out = append(out, found[i])
		}
	}
	return out, nil
}

func (a *App) createSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	if ok, err := v.mayCreate(); err != nil {
		return err
	} else if !ok {
		return errMayNotCreate
	}
	in, err := a.sourceInput(r, c)
	if err != nil {
		return err
	}
	ds, err := a.Sources.Create(r.Context(), c.props, c.p.TenantID(), in, c.p.AccountID, a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.sourceOut(ds, a.names(r, c, ds.Owner), true))
}

// editable is the source in the path if the user may change it.
func (a *App) editable(r *http.Request, c appCtx, v *viewer) (DataSource, error) {
	ds, err := a.visibleSource(r, c, v)
	if err != nil {
		return ds, err
	}
	if ok, err := v.mayEdit(ds); err != nil {
		return ds, err
	} else if !ok {
		return ds, errMayNotEdit
	}
	return ds, nil
}

func (a *App) updateSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	if _, err := a.editable(r, c, v); err != nil {
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
	return writeJSON(w, 200, a.sourceOut(ds, a.names(r, c, ds.Owner), true))
}

func (a *App) deleteSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	if _, err := a.editable(r, c, v); err != nil {
		return err
	}
	if err := a.Sources.Delete(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"), c.p.AccountID, a.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// transferSource gives a source to another user: administrators only.
func (a *App) transferSource(w http.ResponseWriter, r *http.Request, c appCtx) error {
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	if ok, err := v.isAdmin(); err != nil {
		return err
	} else if !ok {
		return apperr.New(apperr.EFORBIDDEN, "Only Jira administrators can transfer a data source to another owner.")
	}
	var in struct {
		AccountID string `json:"accountId"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if _, err := a.Sources.Get(r.Context(), c.props, c.p.TenantID(), r.PathValue("id")); err != nil {
		return err
	}
	if err := a.checkUsers(r, c, "accountId", []string{in.AccountID}); err != nil {
		return err
	}
	ds, err := a.Sources.Transfer(r.Context(), c.props, c.p.TenantID(), r.PathValue("id"), in.AccountID, c.p.AccountID, a.now())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, a.sourceOut(ds, a.names(r, c, ds.Owner), true))
}

// checkUsers makes sure every accountId is an active Jira user.
func (a *App) checkUsers(r *http.Request, c appCtx, field string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if strings.TrimSpace(id) == "" {
			return apperr.Invalid(field, "Name a Jira user.")
		}
	}
	users, err := c.app.Users(r.Context(), ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if u, ok := users[id]; !ok || !u.Active {
			return apperr.Invalid(field, "%q is not an active user of this Jira site.", id)
		}
	}
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
	v, err := a.viewer(r, c)
	if err != nil {
		return err
	}
	if ok, err := v.mayExport(); err != nil {
		return err
	} else if !ok {
		return errMayNotExport
	}
	var in struct {
		Label string `json:"label"`
		Days  int    `json:"days"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	plain, t, err := a.Tokens.Create(r.Context(), c.p.TenantID(), c.p.AccountID, in.Label, in.Days, v.Settings.TokenMaxDays)
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
