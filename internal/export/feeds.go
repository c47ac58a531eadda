package export

import (
	"context"
	"encoding/json"
	"errors"

	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/export/odata"
	"ferry/internal/jira"
	"ferry/internal/keys"
	"ferry/internal/reqinfo"
	"ferry/internal/tenant"
)

// Feeds serves the OData and CSV feeds. A request runs as the owner of the
// access token it presents: Ferry acts as that user in Jira, so they get
// exactly the issues they may browse. Rows pass from Jira to the client one
// at a time and are never written anywhere.
type Feeds struct {
	Log      *slog.Logger
	Platform Platform // Connect or Forge, per installation (Platforms)
	Tenants  *tenant.Store
	Tokens   *Tokens
	Sources  *Sources
	Keys     *keys.Ring
	Workers  int // parallel bulkfetch calls per export without Limits
	// Limits paces every call to a tenant's Jira by what Jira says of its
	// rate limits and counts the points spent (quota.go); shared by every
	// feed and page of the process.
	Limits   *jira.Limits
	MaxDays  int    // longest token lifetime any site may allow
	PageSize int    // most rows per OData page; default defaultPageSize
	LeafRows int    // issues per slice of a sliced walk; default leafRows (tests)
	BaseURL  string // public URL, for @odata.context and nextLink
	// Guard holds the abuse limits (failed tokens, concurrent requests per
	// site) and says which proxies' X-Forwarded-For to believe.
	Guard *Guard

	fieldsMu sync.Mutex
	fields   map[string]fieldsEntry
	zones    zoneCache
	refused  refusals
	instMu   sync.Mutex
	insts    map[string]instEntry
	models   modelCache
	people   people // token owners' groups and administrator status, briefly

	aheadOnce sync.Once
	ahead     *ReadAhead // rows read ahead across all feeds
}

// SharedReadAhead bounds the rows all feeds of the process read ahead of
// what they write (about 20 MB of rows): a lone walk at a burst rate of 20
// calls a second needs about a third of it, several walks share it.
const SharedReadAhead = 16_000

type fieldsEntry struct {
	list []jira.Field
	at   time.Time
}

// feedRequest is an authenticated feed request, resolved to its data source.
type feedRequest struct {
	owner  Owner
	inst   tenant.Installation
	source DataSource
	app    *jira.Client // as the app: properties, fields
	user   *jira.Client // as the token's owner: rows
	fields []jira.Field
	// fieldsAt is when fields were read from Jira (a cache key).
	fieldsAt time.Time
}

// presentedToken reads the token from Basic auth (any user name, the token
// as password — what Power BI and Excel send) or a Bearer header.
func presentedToken(r *http.Request) string {
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

var errNoToken = apperr.New(apperr.EUNAUTHORIZED, "Sign in with your Ferry access token: Basic authentication with any user name and the token as password, or a Bearer token.")

func (f *Feeds) guard() *Guard {
	if f.Guard == nil {
		f.Guard = &Guard{}
	}
	return f.Guard
}

// resolve authenticates a feed request and decides whether it may run, in
// order: the failed-attempt limits (before the token is looked up), the
// token, the site's state, its IP allowlist, its concurrent-request cap,
// its licence, whether the token's owner may pull feeds and may see the
// data source; then it restricts the source's JQL to the site's allowed
// projects, if any.
func (f *Feeds) resolve(r *http.Request) (*feedRequest, error) {
	ctx := jira.WithSpend(r.Context(), "app", nil)
	tok := presentedToken(r)
	if tok == "" {
		return nil, errNoToken
	}
	g := f.guard()
	addr, err := ClientAddr(r, g.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if err := g.checkFailures(addr, tok); err != nil {
		return nil, err
	}
	var inst tenant.Installation
	var app *jira.Client
	var props PropertyStore
	owner, err := f.Tokens.Authenticate(ctx, tok, func(tenantID string) int {
		// The site's policy lives in its Jira; without it the global cap holds.
		i, err := f.installation(ctx, tenantID)
		if err != nil {
			return f.MaxDays
		}
		inst = i
		if app, err = f.Platform.AppClient(ctx, i); err != nil {
			return f.MaxDays
		}
		app.Limits = f.tenantLimits(tenantID)
		if props, err = f.Platform.Properties(ctx, i); err != nil {
			return f.MaxDays
		}
		st, err := f.Sources.Settings(ctx, props, tenantID, f.MaxDays)
		if err != nil {
			return f.MaxDays
		}
		return st.TokenMaxDays
	})
	if errors.Is(err, ErrTokenInvalid) {
		g.failed(addr, tok)
	}
	if err != nil {
		return nil, err
	}
	reqinfo.SetIdentity(ctx, owner.TenantID, owner.Pseudonym)
	if inst.TenantID == "" {
		return nil, ErrTokenInvalid
	}
	if inst.State != tenant.Active {
		return nil, apperr.New(apperr.EFORBIDDEN, "Ferry is disabled or uninstalled on this Jira site; a Jira administrator can enable it under Apps → Manage apps.")
	}
	if app == nil || props == nil {
		// The platform could not be reached while the token was checked
		// (on Forge: no live system token); ask again for the error to
		// answer.
		if app, err = f.Platform.AppClient(ctx, inst); err != nil {
			return nil, asUnavailable(err)
		}
		if props, err = f.Platform.Properties(ctx, inst); err != nil {
			return nil, asUnavailable(err)
		}
	}
	// The settings decide who may do what: without them, nothing runs.
	st, err := f.Sources.Settings(ctx, props, inst.TenantID, f.MaxDays)
	if err != nil {
		return nil, asUnavailable(err)
	}
	nets, err := ParseNetworks(st.AllowedNetworks)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.EUNAVAILABLE, "This site's IP allowlist cannot be read; a Jira administrator can save it again on Ferry's admin page.")
	}
	if !allows(nets, addr) {
		feedRefusals.WithLabelValues("ip_allowlist").Inc()
		return nil, &errOutside{addr: addr}
	}
	if err := g.enter(ctx, inst.TenantID); err != nil {
		return nil, err
	}
	// Licence, the user's client, data source and the field list are
	// independent (and mostly cached): when Jira must be asked, it is asked
	// about all at once. Errors answer in the order of the checks below.
	var src DataSource
	var user *jira.Client
	var fields fieldsEntry
	var errs [4]error
	parallel(ctx, 4, func(ctx context.Context, i int) error {
		var err error
		switch i {
		case 0:
			errs[0] = f.Platform.RequireLicense(ctx, inst)
		case 1:
			if user, err = f.Platform.UserClient(ctx, inst, owner.AccountID); err != nil {
				errs[1] = asUnavailable(err)
			}
		case 2:
			if src, err = f.Sources.Get(ctx, props, inst.TenantID, r.PathValue("source")); err != nil {
				errs[2] = asUnavailable(err)
			}
		default:
			if fields, err = f.siteFieldsAt(ctx, inst.TenantID, app); err != nil {
				errs[3] = asUnavailable(err)
			}
		}
		return nil
	})
	if errs[0] != nil {
		return nil, errs[0]
	}
	if errs[1] != nil {
		return nil, errs[1]
	}
	user.Retry = jira.DefaultRetry
	user.Limits = f.tenantLimits(inst.TenantID)
	v := f.people.cached(inst.TenantID, newViewer(ctx, owner.AccountID, st, app, user))
	if ok, err := v.mayExport(); err != nil {
		return nil, asAccessUnavailable(err)
	} else if !ok {
		feedRefusals.WithLabelValues("not_allowed").Inc()
		return nil, errNotExporter
	}
	if errs[2] != nil {
		return nil, errs[2]
	}
	if ok, err := v.mayView(src); err != nil {
		return nil, asAccessUnavailable(err)
	} else if !ok {
		feedRefusals.WithLabelValues("not_shared").Inc()
		return nil, errNotShared(src)
	}
	if len(st.Projects) > 0 {
		if src.JQL, err = f.restrict(ctx, inst.TenantID, owner.AccountID, user, src.JQL, st.Projects); err != nil {
			return nil, err
		}
	}
	if errs[3] != nil {
		return nil, errs[3]
	}
	return &feedRequest{owner: owner, inst: inst, source: src, app: app, user: user, fields: fields.list, fieldsAt: fields.at}, nil
}

// instTTL is how long a tenant's installation record is trusted in memory
// by the feeds: a site disabled or uninstalled (on any replica) stops being
// served within it.
const instTTL = 2 * time.Second

type instEntry struct {
	inst tenant.Installation
	at   time.Time
}

// Forget drops what the feeds keep in memory of a tenant's installation and
// its users' time zones: its state changed, or it is being deleted. (Its
// standing with Jira's rate limits stays: that is Jira's state, not the
// tenant's.)
func (f *Feeds) Forget(tenantID string) {
	f.instMu.Lock()
	delete(f.insts, tenantID)
	f.instMu.Unlock()
	f.zones.mu.Lock()
	for k := range f.zones.m {
		if strings.HasPrefix(k, tenantID+"\x00") {
			delete(f.zones.m, k)
		}
	}
	f.zones.mu.Unlock()
}

// installation reads a tenant's installation, from memory when read within
// instTTL.
func (f *Feeds) installation(ctx context.Context, tenantID string) (tenant.Installation, error) {
	f.instMu.Lock()
	e, ok := f.insts[tenantID]
	f.instMu.Unlock()
	if ok && time.Since(e.at) < instTTL {
		return e.inst, nil
	}
	in, err := f.Tenants.ByID(ctx, tenantID)
	if err != nil {
		return in, err
	}
	f.instMu.Lock()
	if f.insts == nil || len(f.insts) > 10000 {
		f.insts = map[string]instEntry{}
	}
	f.insts[tenantID] = instEntry{in, time.Now()}
	f.instMu.Unlock()
	return in, nil
}

// errOutside: the request came from outside the site's IP allowlist. The
// address goes to the client in a header only, never into the message,
// which the request log keeps: Ferry logs no client addresses.
type errOutside struct{ addr netip.Addr }

var errOutsideMsg = apperr.New(apperr.EFORBIDDEN, "This Jira site accepts feed requests only from the network addresses its Jira administrator allows, and this request's address is not one of them (the Ferry-Client-Address header of this answer says which address Ferry saw). For the Power BI service, ask the administrator to allow its data gateway's addresses.")

func (e *errOutside) Error() string { return errOutsideMsg.Error() }
func (e *errOutside) Unwrap() error { return errOutsideMsg }

// errNotExporter: the site's settings do not let the token's owner pull feeds.
var errNotExporter = apperr.New(apperr.EFORBIDDEN, "Your Jira administrator has not allowed this token's owner to pull feeds from Ferry. Ask a Jira administrator to add you, or one of your groups, to those who may create tokens and pull feeds (Apps → Ferry BI Connector).")

// errNotShared: the data source is not the token owner's nor shared with them.
func errNotShared(ds DataSource) error {
	if ds.Visibility == VisibilityGroups {
		return apperr.New(apperr.EFORBIDDEN, "This data source is shared only with Jira groups this token's owner is not in. Ask its owner or a Jira administrator to share it with you.")
	}
	return apperr.New(apperr.EFORBIDDEN, "This data source is private to its owner. Ask its owner or a Jira administrator to share it with you.")
}

// asAccessUnavailable: Jira could not say who the token's owner is. A
// refusal the platform already explains (Forge's impersonation refused, its
// system token lapsed) keeps its own message.
func asAccessUnavailable(err error) error {
	if errors.Is(err, atlassian.ErrTokenExchange) {
		return apperr.Wrap(err, apperr.EFORBIDDEN, "%s", errActAsUser.Message)
	}
	if ae := (*apperr.Error)(nil); errors.As(err, &ae) {
		return err
	}
	return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira could not say what this token's owner may do right now; try again in a minute.")
}

// restrict limits a source's JQL to the allowed projects the token's owner
// can see: Jira refuses a query naming a project the user cannot browse, so
// the list is narrowed first (asked as the user, kept briefly).
func (f *Feeds) restrict(ctx context.Context, tenantID, accountID string, user *jira.Client, jql string, allowed []ProjectRef) (string, error) {
	ids := make([]string, 0, len(allowed))
	keys := make([]string, 0, len(allowed))
	for _, p := range allowed {
		ids, keys = append(ids, p.ID), append(keys, p.Key)
	}
	ck := tenantID + "\x00scope\x00" + accountID + "\x00" + strings.Join(ids, ",")
	v, err := f.Sources.freshOr(ctx, ck, func(ctx context.Context) (any, error) {
		found, err := user.ProjectsByID(ctx, ids)
		if err != nil {
			return nil, asAccessUnavailable(err)
		}
		visible := []string{}
		for _, p := range found {
			if slices.Contains(ids, p.ID) {
				visible = append(visible, p.ID)
			}
		}
		return visible, nil
	})
	if err != nil {
		return "", err
	}
	visible := v.([]string)
	if len(visible) == 0 {
		feedRefusals.WithLabelValues("project_scope").Inc()
		return "", apperr.New(apperr.EFORBIDDEN, "Your Jira administrator allows export only from the projects %s, and this token's owner cannot browse any of them.", strings.Join(keys, ", "))
	}
	q, err := RestrictJQL(jql, visible)
	if err != nil {
		feedRefusals.WithLabelValues("project_scope").Inc()
		return "", apperr.Invalid("jql", "Your Jira administrator allows export only from some projects, and Ferry cannot apply that to this data source's JQL: %s. Ask its owner to change the JQL.", err)
	}
	return q, nil
}

// asUnavailable turns Jira transport trouble into a clear 503.
func asUnavailable(err error) error {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return apperr.Wrap(err, apperr.EUNAVAILABLE, "Jira is not answering right now; try again in a minute.")
}

// siteFields caches the site's field list in memory for five minutes: it is
// metadata, not Customer Data, and every page of every feed needs it.
func (f *Feeds) siteFields(ctx context.Context, tenantID string, app *jira.Client) ([]jira.Field, error) {
	e, err := f.siteFieldsAt(ctx, tenantID, app)
	return e.list, err
}

func (f *Feeds) siteFieldsAt(ctx context.Context, tenantID string, app *jira.Client) (fieldsEntry, error) {
	f.fieldsMu.Lock()
	e, ok := f.fields[tenantID]
	f.fieldsMu.Unlock()
	if ok && time.Since(e.at) < 5*time.Minute {
		return e, nil
	}
	list, err := app.Fields(ctx)
	if err != nil {
		return fieldsEntry{}, err
	}
	e = fieldsEntry{list: list, at: time.Now()}
	f.fieldsMu.Lock()
	if f.fields == nil {
		f.fields = map[string]fieldsEntry{}
	}
	f.fields[tenantID] = e
	f.fieldsMu.Unlock()
	return e, nil
}

// modelCache keeps each data source's data model (entity sets and columns)
// while neither the source nor the site's field list changes: building it
// on every page would cost more than the page's first row.
type modelCache struct {
	mu sync.Mutex
	m  map[string]model
}

type model struct {
	svc  odata.Service
	cols []Column
}

// model is service(fr.source, fr.fields), cached.
func (f *Feeds) model(fr *feedRequest) (odata.Service, []Column) {
	k := fr.inst.TenantID + "\x00" + fr.source.ID + "\x00" + fr.source.Updated.String() + "\x00" + fr.fieldsAt.String()
	f.models.mu.Lock()
	m, ok := f.models.m[k]
	f.models.mu.Unlock()
	if ok {
		return m.svc, m.cols
	}
	svc, cols := service(fr.source, fr.fields)
	f.models.mu.Lock()
	if f.models.m == nil || len(f.models.m) > 1000 {
		f.models.m = map[string]model{}
	}
	f.models.m[k] = model{svc, cols}
	f.models.mu.Unlock()
	return svc, cols
}

func (f *Feeds) fetcher(c *jira.Client) *Fetcher {
	f.aheadOnce.Do(func() { f.ahead = NewReadAhead(SharedReadAhead) })
	return &Fetcher{Client: c, Workers: f.Workers, LeafRows: f.LeafRows, ReadAhead: f.ahead}
}

// feedCodes maps Ferry's application errors to the feed's one vocabulary
// (odata.Code*), which BI tools show.
var feedCodes = map[apperr.Code]string{
	apperr.EINVALID: odata.CodeBadRequest, apperr.EUNAUTHORIZED: odata.CodeUnauthorized,
	apperr.EPAYMENT: odata.CodeLicenseRequired, apperr.EFORBIDDEN: odata.CodeForbidden,
	apperr.ENOTFOUND: odata.CodeNotFound, apperr.ERATELIMIT: odata.CodeTooManyRequests,
	apperr.ENOTIMPLEMENTED: odata.CodeNotImplemented, apperr.EUNAVAILABLE: odata.CodeServiceUnavailable,
	apperr.EINTERNAL: odata.CodeInternal,
}

// errActAsUser: Jira does not let Ferry act as the token's owner.
var errActAsUser = apperr.New(apperr.EFORBIDDEN, "Jira does not let Ferry act as this token's owner: the account is deactivated or has lost access to the site. Ask an active user to create a new token.")

// writeFeedError answers in OData's error format, which BI tools display,
// with the feed's one error-code vocabulary.
func (f *Feeds) writeFeedError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the client left; there is nobody to answer
	}
	var je *jira.Error
	switch {
	case errors.As(err, &je) && je.Status == http.StatusBadRequest:
		err = &odata.Error{Status: http.StatusBadRequest, Code: odata.CodeBadRequest,
			Message: "Jira refused the data source's query: " + strings.Join(je.Messages, " ")}
	case errors.Is(err, atlassian.ErrTokenExchange):
		err = apperr.Wrap(err, apperr.EFORBIDDEN, "%s", errActAsUser.Message)
	case errors.Is(err, jira.ErrQuota):
		err = quotaError(err)
	}
	oe := &odata.Error{}
	if !errors.As(err, &oe) {
		p := apperr.ProblemOf(err)
		code, ok := feedCodes[p.Code]
		if !ok {
			code = odata.CodeInternal
		}
		oe = &odata.Error{Status: p.Status, Code: code, Message: p.Detail, Target: p.Field}
		if p.Status >= 500 && f.Log != nil {
			f.Log.ErrorContext(r.Context(), "feed failed", "route", r.Pattern, "err", err)
		}
	}
	reqinfo.SetError(r.Context(), oe.Code, oe.Message)
	if re := (*errRetry)(nil); errors.As(err, &re) {
		w.Header().Set("Retry-After", re.RetryAfter())
	}
	if eo := (*errOutside)(nil); errors.As(err, &eo) {
		w.Header().Set("Ferry-Client-Address", eo.addr.String())
	}
	if oe.Status == http.StatusUnauthorized {
		// Power BI and Excel ask for credentials again when they see this.
		w.Header().Set("WWW-Authenticate", `Basic realm="Ferry feed", charset="UTF-8"`)
	}
	odata.WriteError(w, oe)
}

// skiptokenKey signs paging tokens per data source, token owner and source
// JQL, derived from the tenant's PRF key: a token resumes only the walk it
// was minted for — not another source of the site, not another user's, not a
// source whose query has since changed — and dies with a shredded tenant.
func (f *Feeds) skiptokenKey(ctx context.Context, fr *feedRequest) ([]byte, error) {
	k, err := f.Keys.Pseudonym(ctx, fr.inst.TenantID, "ferry/odata-skiptoken-key\x00"+fr.source.ID+"\x00"+fr.owner.AccountID+"\x00"+fr.source.JQL)
	return []byte(k), err
}

func parseCursor(s string) (Cursor, error) {
	var c Cursor
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, err
	}
	if !c.Plan.resumable() {
		return c, errors.New("export: the position is in a walk planned by an older rule")
	}
	return c, nil
}

func encodeCursor(c Cursor) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// splitOrderBy separates a JQL query's ORDER BY clause from its condition,
// where Jira would (scopeSplit), so that a $filter can be ANDed to the
// condition and an $orderby can replace the order. A query the lexer cannot
// read is passed on whole: Jira refuses it with its own message.
func splitOrderBy(jql string) (where, order string) {
	where, order, err := scopeSplit(jql, false)
	if err != nil {
		return strings.TrimSpace(jql), ""
	}
	return where, order
}

// combineJQL ANDs a filter to the source's condition and applies an order.
func combineJQL(source, filter, orderBy string) string {
	where, order := splitOrderBy(source)
	switch {
	case where != "" && filter != "":
		where = "(" + where + ") AND (" + filter + ")"
	case filter != "":
		where = filter
	}
	if orderBy != "" {
		order = orderBy
	}
	if order != "" {
		return strings.TrimSpace(where + " ORDER BY " + order)
	}
	return where
}
