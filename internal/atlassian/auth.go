package atlassian

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/reqinfo"
	"ferry/internal/tenant"
)

// ContextTokenTTL is how long a context token minted for a page lives, as in
// atlassian-connect-express.
const ContextTokenTTL = 15 * time.Minute

// Principal is who a request to /app/ or /app-api/ comes from.
type Principal struct {
	Installation  tenant.Installation
	AccountID     string // raw Atlassian accountId: memory only, to act as the user; never stored or logged
	UserPseudonym string // keyed pseudonym of AccountID: what may be stored and logged
	License       string // the lic parameter Jira put on a page URL (covered by qsh): "active", "none" or ""
}

// TenantID is the tenant every store query of this request is scoped to.
func (p Principal) TenantID() string { return p.Installation.TenantID }

// LogValue keeps the raw accountId out of logs even if a Principal is logged.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant", p.Installation.TenantID), slog.String("user", p.UserPseudonym))
}

// UnlicensedMessage is what the app and the feeds say to an unlicensed site.
const UnlicensedMessage = "This Jira site has no active license for Ferry BI Connector. A Jira administrator can buy or renew it under Apps → Manage apps; feeds resume as soon as the license is active."

// PageLicensed reports whether Jira said the site is licensed when it loaded
// this page (lic=active).
func (p Principal) PageLicensed() bool { return p.License == "active" }

type principalKey struct{}

// PrincipalFrom returns the authenticated principal of the request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p (for tests of handlers behind the
// middleware).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// RequirePage authenticates an app page that Jira loads in an iframe: the
// token must be bound to this exact request (qsh), as Jira signs page URLs.
func (c *Connect) RequirePage(next http.Handler) http.Handler { return c.require(next, false) }

// RequireAPI authenticates the app's JSON API, which its own pages call with
// a context token (qsh "context-qsh", from MintContextToken or
// AP.context.getToken) or with a request-bound token.
func (c *Connect) RequireAPI(next http.Handler) http.Handler { return c.require(next, true) }

func (c *Connect) require(next http.Handler, api bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, ok := jwtFromHeader(r)
		if !ok {
			raw = r.URL.Query().Get("jwt")
		}
		if raw == "" {
			c.fail(w, r, apperr.New(apperr.EUNAUTHORIZED, "open this page from Jira: the request carries no Connect JWT"))
			return
		}
		inst, t, err := c.verifyTenantToken(ctx, r, raw, api)
		if err != nil {
			c.fail(w, r, authError(err))
			return
		}
		if t.claims.Sub == "" {
			c.fail(w, r, apperr.New(apperr.EUNAUTHORIZED, "the JWT names no user (sub); sign in to Jira"))
			return
		}
		switch inst.State {
		case tenant.Active:
		case tenant.Disabled:
			apperr.Write(w, r, c.log, apperr.New(apperr.EFORBIDDEN, "Ferry BI Connector is disabled on this Jira site. A Jira administrator can enable it under Apps → Manage apps."))
			return
		default:
			apperr.Write(w, r, c.log, apperr.New(apperr.EFORBIDDEN, "Ferry BI Connector was uninstalled from this Jira site and its data is scheduled for deletion. Reinstall the app to use it again."))
			return
		}
		pseudonym, err := c.keys.Pseudonym(ctx, inst.TenantID, t.claims.Sub)
		if err != nil {
			apperr.Write(w, r, c.log, apperr.Wrap(err, apperr.EINTERNAL, "user pseudonym unavailable"))
			return
		}
		if c.accounts != nil {
			// The pseudonym is about to be logged: the account must be
			// reportable first.
			if err := c.accounts.Hold(ctx, inst.TenantID, t.claims.Sub); err != nil {
				apperr.Write(w, r, c.log, apperr.Wrap(err, apperr.EINTERNAL, "user account could not be recorded"))
				return
			}
		}
		p := Principal{Installation: inst, AccountID: t.claims.Sub, UserPseudonym: pseudonym}
		if !api {
			p.License = r.URL.Query().Get("lic")
		}
		reqinfo.SetIdentity(ctx, inst.TenantID, pseudonym)
		next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
	})
}

// contextClaims are those of a token Ferry mints for its own pages.
type contextClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Qsh string `json:"qsh"`
}

// MintContextToken returns a short-lived (ContextTokenTTL) context-qsh token
// for accountID, signed with the tenant's shared secret, that a rendered
// page uses for its own /app-api/ calls. It has the shape of Jira's own
// context tokens (iss = clientKey), so RequireAPI accepts it and nothing
// else does: pages and lifecycle routes refuse context-qsh.
func (c *Connect) MintContextToken(ctx context.Context, inst tenant.Installation, accountID string) (string, error) {
	secret, err := c.tenants.SharedSecret(ctx, inst.TenantID)
	if err != nil {
		return "", err
	}
	now := c.now().Unix()
	return signHS256(contextClaims{Iss: inst.ClientKey, Sub: accountID, Iat: now, Exp: now + int64(ContextTokenTTL/time.Second), Qsh: ContextQSH}, secret)
}
