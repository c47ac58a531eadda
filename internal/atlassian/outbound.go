package atlassian

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"ferry/internal/tenant"
)

// Authorizer adds credentials to one outbound request to a tenant's Jira.
// The Jira REST client calls it for every request it sends.
type Authorizer interface {
	Authorize(ctx context.Context, req *http.Request) error
}

// OAuthAudience is the aud of every JWT-bearer assertion, whatever
// FERRY_CONNECT_OAUTH_URL says (the simulator accepts it too).
const OAuthAudience = "https://oauth-2-authorization-server.services.atlassian.com"

// appTokenTTL is the life of an app JWT: one request's worth, as Atlassian
// recommends (+180 s).
const appTokenTTL = 180 * time.Second

// assertionTTL is the life of a JWT-bearer assertion; Atlassian allows 60 s.
const assertionTTL = 60 * time.Second

// ErrWrongSite: a request was about to carry a tenant's credentials to a
// host that is not the tenant's site.
var ErrWrongSite = errors.New("atlassian: request is not for the tenant's site")

// ErrTenantInactive: the installation is disabled or pending deletion.
var ErrTenantInactive = errors.New("atlassian: installation is not active")

// checkTarget refuses to sign a request for anything but the tenant's own
// site (scheme, host and base path), so credentials cannot leak elsewhere.
func checkTarget(inst tenant.Installation, req *http.Request) (basePath string, err error) {
	if inst.State != tenant.Active {
		return "", ErrTenantInactive
	}
	bu, err := url.Parse(inst.BaseURL)
	if err != nil {
		return "", ErrWrongSite
	}
	basePath = strings.TrimSuffix(bu.EscapedPath(), "/")
	if req.URL.Scheme != bu.Scheme || !strings.EqualFold(req.URL.Host, bu.Host) || !strings.HasPrefix(req.URL.EscapedPath(), basePath+"/") {
		return "", ErrWrongSite
	}
	return basePath, nil
}

type appClaims struct {
	Iss string `json:"iss"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Qsh string `json:"qsh"`
}

type appAuth struct {
	c    *Connect
	inst tenant.Installation
}

// AppAuth signs each request as the app: HS256 with the shared secret,
// iss = the app key, exp +180 s, and the qsh of that request, so the token
// is good for that one call only.
func (c *Connect) AppAuth(inst tenant.Installation) Authorizer { return appAuth{c, inst} }

func (a appAuth) Authorize(ctx context.Context, req *http.Request) error {
	basePath, err := checkTarget(a.inst, req)
	if err != nil {
		return err
	}
	secret, err := a.c.tenants.SharedSecret(ctx, a.inst.TenantID)
	if err != nil {
		return fmt.Errorf("atlassian: shared secret: %w", err)
	}
	now := a.c.now().Unix()
	tok, err := signHS256(appClaims{
		Iss: a.c.cfg.AddonKey, Iat: now, Exp: now + int64(appTokenTTL/time.Second),
		Qsh: QSH(req.Method, req.URL.EscapedPath(), basePath, req.URL.RawQuery),
	}, secret)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "JWT "+tok)
	return nil
}

type userAuth struct {
	c         *Connect
	inst      tenant.Installation
	accountID string
}

// UserAuth acts as the user accountID (scope ACT_AS_USER): it exchanges a
// JWT-bearer assertion for an access token at FERRY_CONNECT_OAUTH_URL and
// sends it as a Bearer token. Access tokens are cached in memory only, until
// shortly before they expire.
func (c *Connect) UserAuth(inst tenant.Installation, accountID string) Authorizer {
	return userAuth{c, inst, accountID}
}

func (u userAuth) Authorize(ctx context.Context, req *http.Request) error {
	if _, err := checkTarget(u.inst, req); err != nil {
		return err
	}
	if u.accountID == "" {
		return errors.New("atlassian: acting as a user needs an accountId")
	}
	tok, err := u.c.userTokens.Get(ctx, u.inst.TenantID+"\x00"+u.accountID, u.c.now, func() (string, time.Duration, error) {
		return u.c.exchange(ctx, u.inst, u.accountID)
	})
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

type assertionClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Tnt string `json:"tnt"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// ErrTokenExchange: the OAuth server refused to let the app act as the user.
var ErrTokenExchange = errors.New("atlassian: acting as the user was refused")

// exchange runs the JWT-bearer grant.
func (c *Connect) exchange(ctx context.Context, inst tenant.Installation, accountID string) (string, time.Duration, error) {
	if inst.OAuthClientID == "" {
		return "", 0, fmt.Errorf("%w: the installation has no oauthClientId", ErrTokenExchange)
	}
	secret, err := c.tenants.SharedSecret(ctx, inst.TenantID)
	if err != nil {
		return "", 0, fmt.Errorf("atlassian: shared secret: %w", err)
	}
	now := c.now().Unix()
	assertion, err := signHS256(assertionClaims{
		Iss: "urn:atlassian:connect:clientid:" + inst.OAuthClientID,
		Sub: "urn:atlassian:connect:useraccountid:" + accountID,
		Tnt: inst.BaseURL, Aud: OAuthAudience, Iat: now, Exp: now + int64(assertionTTL/time.Second),
	}, secret)
	if err != nil {
		return "", 0, err
	}
	form := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {assertion},
		"scope":      {"READ ACT_AS_USER"},
	}
	target := strings.TrimSuffix(c.cfg.OAuthURL, "/") + "/oauth2/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.oauth.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("atlassian: token exchange: %w", err)
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != req.URL.Host {
		return "", 0, fmt.Errorf("%w: the OAuth server redirected to another host", ErrTokenExchange)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil && resp.StatusCode == http.StatusOK {
		return "", 0, fmt.Errorf("%w: unreadable token response", ErrTokenExchange)
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		// Only the OAuth error code: descriptions may echo claims.
		return "", 0, fmt.Errorf("%w: HTTP %d %s", ErrTokenExchange, resp.StatusCode, out.Error)
	}
	return out.AccessToken, time.Duration(out.ExpiresIn) * time.Second, nil
}

// Forget drops what is cached in memory for a tenant (user access tokens,
// the licence answer): after a purge or a request for deletion.
func (c *Connect) Forget(tenantID string) { c.forget(tenantID) }

// forget drops what is cached for a tenant after a lifecycle event: a new
// secret or state must take effect at once.
func (c *Connect) forget(tenantID string) {
	c.userTokens.ForgetPrefix(tenantID + "\x00")
	c.licMu.Lock()
	delete(c.licenses, tenantID)
	c.licMu.Unlock()
	c.forgetMu.Lock()
	fns := append([]func(string){}, c.onForget...)
	c.forgetMu.Unlock()
	for _, fn := range fns {
		fn(tenantID)
	}
}
