package atlassian

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/keys"
	"ferry/internal/tenant"
)

// maxLifecycleBody bounds a lifecycle payload; real ones are about 1 KiB.
const maxLifecycleBody = 64 << 10

// minSecretLen refuses shared secrets too short to be Atlassian's.
const minSecretLen = 32

// lifecyclePayload is the allowlist of what Ferry reads from a lifecycle
// callback. Everything else in the JSON (publicKey, userKey, email, …) is
// ignored by the decoder and never reaches the database.
type lifecyclePayload struct {
	Key                      string `json:"key"`
	ClientKey                string `json:"clientKey"`
	SharedSecret             string `json:"sharedSecret"`
	BaseURL                  string `json:"baseUrl"`
	DisplayURL               string `json:"displayUrl"`
	ProductType              string `json:"productType"`
	Description              string `json:"description"`
	ServiceEntitlementNumber string `json:"serviceEntitlementNumber"`
	EntitlementID            string `json:"entitlementId"`
	EntitlementNumber        string `json:"entitlementNumber"`
	OAuthClientID            string `json:"oauthClientId"`
	InstallationID           string `json:"installationId"`
	CloudID                  string `json:"cloudId"`
	EventType                string `json:"eventType"`
}

// cloudIDOf keeps a payload's cloudId only if it has the form of one (a
// UUID): it lets the site's Forge installation find this tenant.
func cloudIDOf(p lifecyclePayload) string {
	id := strings.ToLower(p.CloudID)
	if len(id) != 36 {
		return ""
	}
	for i, c := range id {
		if (i == 8 || i == 13 || i == 18 || i == 23) != (c == '-') || c != '-' && !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return id
}

// fail answers a request that failed authentication or validation. 401s carry a JWT challenge.
func (c *Connect) fail(w http.ResponseWriter, r *http.Request, err error) {
	if apperr.CodeOf(err) == apperr.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `JWT realm="Ferry"`)
	}
	if rl := new(*retryLater); errors.As(err, rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil((*rl).after.Seconds()))))
	}
	apperr.Write(w, r, c.log, err)
}

// authError maps verification failures to client errors with a message
// that names the check, never the token.
func authError(err error) error {
	switch {
	case errors.Is(err, ErrIssuer):
		return apperr.Wrap(err, apperr.EFORBIDDEN, "the JWT issuer is not the clientKey of this payload")
	case errors.As(err, new(*retryLater)):
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "too many unknown install-key ids were presented lately; retry later")
	case errors.Is(err, errKeyService):
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "the Connect install-key service could not be reached; retry later")
	case errors.Is(err, tenant.ErrReplayed):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "this lifecycle token was used before; a lifecycle callback is accepted once per token")
	case errors.Is(err, ErrMalformed):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT is malformed")
	case errors.Is(err, ErrAlgorithm):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT algorithm is not accepted on this route")
	case errors.Is(err, ErrKeyID):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT key id (kid) is missing or unknown")
	case errors.Is(err, ErrSignature):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT signature is invalid")
	case errors.Is(err, ErrExpired):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT has expired or is not yet valid")
	case errors.Is(err, ErrContextQSH):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "a context-qsh JWT is not accepted on this route")
	case errors.Is(err, ErrQSH):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT qsh does not match this request")
	case errors.Is(err, ErrAudience):
		return apperr.Wrap(err, apperr.EUNAUTHORIZED, "the JWT audience is not this app")
	}
	return err
}

// jwtFromHeader reads "Authorization: JWT <token>".
func jwtFromHeader(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "JWT") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// verifySignedInstall checks an installed/uninstalled token (signed-install):
// Atlassian signs it with RS256; its public key is fetched by kid; aud must
// be this app (a token minted for another app cannot be replayed here); qsh
// must bind it to this very request (never context-qsh); exp must be live.
// The caller then checks iss against the payload's clientKey, and the
// tenant store uses the token up with the change it makes.
func (c *Connect) verifySignedInstall(ctx context.Context, r *http.Request) (*token, error) {
	raw, ok := jwtFromHeader(r)
	if !ok {
		return nil, apperr.New(apperr.EUNAUTHORIZED, "lifecycle callbacks need an Authorization: JWT header")
	}
	t, err := parseJWT(raw)
	if err != nil {
		return nil, err
	}
	// Everything that needs no key is checked before a key is looked up, so
	// a token that would fail anyway never costs a fetch: only RS256 here,
	// whatever the token says; a live exp; this app; this request.
	if t.header.Alg != "RS256" {
		return nil, ErrAlgorithm
	}
	if err := t.checkTime(c.now()); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(t.claims.Aud, func(a string) bool { return strings.TrimSuffix(a, "/") == c.appBaseURL() }) {
		return nil, ErrAudience
	}
	if err := t.checkQSH(c.qshOf(r), false); err != nil {
		return nil, err
	}
	pub, err := c.installKeys.get(ctx, t.header.Kid)
	if err != nil {
		return nil, err
	}
	if err := t.verifyRS256(pub); err != nil {
		return nil, err
	}
	return t, nil
}

// nonceOf names a verified lifecycle token in the record of used tokens:
// by its jti with its issuer when it has one, else by its signed part and
// the decoded signature. Not by the string as sent: base64url leaves unused
// bits in the signature's last character, so one signature has several
// spellings, and a replay could otherwise pass as a new token. The
// signature counts because HS256 tokens with the same claims under two
// shared secrets (an uninstall and reinstall in one second) are two tokens.
func nonceOf(t *token) tenant.Nonce {
	h := sha256.New()
	if t.claims.Jti != "" {
		h.Write([]byte("connect-jti\x00" + t.claims.Iss + "\x00" + t.claims.Jti))
	} else {
		h.Write([]byte("connect-jwt\x00" + t.signingInput + "\x00"))
		h.Write(t.sig)
	}
	return tenant.Nonce{Digest: hex.EncodeToString(h.Sum(nil)), Expires: time.Unix(t.claims.Exp, 0).Add(clockSkew)}
}

// refuseReplay answers a lifecycle callback whose token was used before.
func (c *Connect) refuseReplay(w http.ResponseWriter, r *http.Request, event string, err error) {
	c.log.WarnContext(r.Context(), "connect lifecycle token replayed", "event", event)
	c.fail(w, r, authError(err))
}

func readPayload(r *http.Request) (lifecyclePayload, error) {
	var p lifecyclePayload
	b, err := io.ReadAll(io.LimitReader(r.Body, maxLifecycleBody+1))
	if err != nil || len(b) > maxLifecycleBody {
		return p, apperr.New(apperr.ETOOLARGE, "lifecycle payload larger than %d bytes", maxLifecycleBody)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, apperr.Invalid("body", "the lifecycle payload is not a JSON object")
	}
	if p.ClientKey == "" {
		return p, apperr.Invalid("clientKey", "clientKey is required")
	}
	return p, nil
}

// checkPayload checks what every lifecycle payload must say about itself.
func (c *Connect) checkPayload(t *token, p lifecyclePayload, event string) error {
	// iss names the site Atlassian signed for; a valid token for one site
	// must not install, change or remove another (the forged-reinstall hole).
	if t.claims.Iss != p.ClientKey {
		return ErrIssuer
	}
	if p.Key != c.cfg.AddonKey {
		return apperr.Invalid("key", "the payload is for app %q, not %q", p.Key, c.cfg.AddonKey)
	}
	if p.EventType != "" && p.EventType != event {
		return apperr.Invalid("eventType", "eventType %q sent to the %s callback", p.EventType, event)
	}
	return nil
}

// signedCallback verifies an RS256-signed lifecycle callback and its payload
// for event. On failure it has answered the request and reports false.
func (c *Connect) signedCallback(w http.ResponseWriter, r *http.Request, event string) (*token, lifecyclePayload, bool) {
	t, err := c.verifySignedInstall(r.Context(), r)
	if err != nil {
		c.fail(w, r, authError(err))
		return nil, lifecyclePayload{}, false
	}
	p, err := readPayload(r)
	if err == nil {
		err = c.checkPayload(t, p, event)
	}
	if err != nil {
		c.fail(w, r, authError(err))
		return nil, lifecyclePayload{}, false
	}
	return t, p, true
}

// apperrField is the field an *apperr.Error names, for logs.
func apperrField(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// HandleInstalled verifies a signed installed callback and records the
// installation: the first install creates the tenant, a reinstall replaces
// the shared secret (and, for a site rename, the baseUrl). The token works
// once; a reinstall may not change what identifies the site (see
// tenant.Store.Install).
func (c *Connect) HandleInstalled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, p, ok := c.signedCallback(w, r, "installed")
		if !ok {
			return
		}
		if err := CheckSiteURL(p.BaseURL, c.cfg.ConnectAllowedHosts, c.cfg.AllowLoopback); err != nil {
			c.fail(w, r, &apperr.Error{Code: apperr.EFORBIDDEN, Field: "baseUrl", Message: err.Error()})
			return
		}
		if p.ProductType != "jira" {
			c.fail(w, r, apperr.Invalid("productType", "productType %q is not jira", p.ProductType))
			return
		}
		if len(p.SharedSecret) < minSecretLen {
			c.fail(w, r, apperr.Invalid("sharedSecret", "sharedSecret is missing or shorter than %d characters", minSecretLen))
			return
		}
		inst, created, err := c.tenants.Install(ctx, tenant.Install{
			AddonKey: p.Key, ProductType: p.ProductType, ClientKey: p.ClientKey, BaseURL: strings.TrimSuffix(p.BaseURL, "/"),
			DisplayURL: strings.TrimSuffix(p.DisplayURL, "/"), Description: p.Description,
			ServiceEntitlementNumber: p.ServiceEntitlementNumber, EntitlementID: p.EntitlementID,
			EntitlementNumber: p.EntitlementNumber, OAuthClientID: p.OAuthClientID, InstallationID: p.InstallationID, CloudID: cloudIDOf(p),
			SharedSecret: []byte(p.SharedSecret), InstallerAccountID: t.claims.Sub, Nonce: nonceOf(t),
		})
		switch {
		case errors.Is(err, tenant.ErrReplayed):
			c.refuseReplay(w, r, "installed", err)
			return
		case errors.Is(err, tenant.ErrIdentityChanged):
			c.log.WarnContext(ctx, "connect reinstall refused: it would change what identifies the site", "field", apperrField(err))
			c.fail(w, r, err)
			return
		case err != nil:
			c.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "installation could not be saved"))
			return
		}
		c.forget(inst.TenantID)
		c.log.InfoContext(ctx, "connect installed", "tenant", inst.TenantID, "new_tenant", created)
		w.WriteHeader(http.StatusNoContent)
	})
}

// HandleUninstalled verifies a signed uninstalled callback and marks the
// tenant pending deletion. An unknown site is answered 204: there is nothing
// to delete, and Jira would otherwise retry.
func (c *Connect) HandleUninstalled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		t, p, ok := c.signedCallback(w, r, "uninstalled")
		if !ok {
			return
		}
		inst, err := c.tenants.ByClientKey(ctx, p.ClientKey)
		if errors.Is(err, tenant.ErrNotFound) {
			// Nothing to mark, but the token is used all the same.
			if err := c.tenants.Consume(ctx, nonceOf(t)); errors.Is(err, tenant.ErrReplayed) {
				c.refuseReplay(w, r, "uninstalled", err)
				return
			} else if err != nil {
				c.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "uninstall could not be recorded"))
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if err == nil {
			_, err = c.tenants.Record(ctx, inst.TenantID, tenant.EventUninstalled, nonceOf(t))
		}
		if errors.Is(err, tenant.ErrReplayed) {
			c.refuseReplay(w, r, "uninstalled", err)
			return
		}
		if err != nil {
			c.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "uninstall could not be recorded"))
			return
		}
		c.forget(inst.TenantID)
		c.log.InfoContext(ctx, "connect uninstalled", "tenant", inst.TenantID)
		w.WriteHeader(http.StatusNoContent)
	})
}

// HandleEnabled and HandleDisabled verify an HS256 token signed with the
// tenant's stored shared secret.
func (c *Connect) HandleEnabled() http.Handler  { return c.handleToggle("enabled") }
func (c *Connect) HandleDisabled() http.Handler { return c.handleToggle("disabled") }

func (c *Connect) handleToggle(event string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, ok := jwtFromHeader(r)
		if !ok {
			c.fail(w, r, apperr.New(apperr.EUNAUTHORIZED, "lifecycle callbacks need an Authorization: JWT header"))
			return
		}
		inst, t, err := c.verifyTenantToken(ctx, r, raw, false)
		if err != nil {
			c.fail(w, r, authError(err))
			return
		}
		p, err := readPayload(r)
		if err == nil {
			err = c.checkPayload(t, p, event)
		}
		if err != nil {
			c.fail(w, r, authError(err))
			return
		}
		_, err = c.tenants.Record(ctx, inst.TenantID, tenant.Event(event), nonceOf(t))
		if errors.Is(err, tenant.ErrReplayed) {
			c.refuseReplay(w, r, event, err)
			return
		}
		if err != nil {
			c.fail(w, r, apperr.Wrap(err, apperr.EINTERNAL, "%s could not be recorded", event))
			return
		}
		c.forget(inst.TenantID)
		c.log.InfoContext(ctx, "connect "+event, "tenant", inst.TenantID)
		w.WriteHeader(http.StatusNoContent)
	})
}

// verifyTenantToken checks an HS256 token that Jira (or Ferry itself, for
// context tokens) signed with a tenant's shared secret: iss picks the
// installation, the secret verifies the signature, then time and qsh.
// allowContext admits context-qsh (only Ferry's JSON API does).
func (c *Connect) verifyTenantToken(ctx context.Context, r *http.Request, raw string, allowContext bool) (tenant.Installation, *token, error) {
	t, err := parseJWT(raw)
	if err != nil {
		return tenant.Installation{}, nil, err
	}
	// Before the database is asked: only HS256 is valid here.
	if t.header.Alg != "HS256" {
		return tenant.Installation{}, nil, ErrAlgorithm
	}
	if t.claims.Iss == "" {
		return tenant.Installation{}, nil, ErrSignature
	}
	inst, err := c.tenants.ByClientKey(ctx, t.claims.Iss)
	if errors.Is(err, tenant.ErrNotFound) {
		// Same answer as a bad signature: an unknown issuer learns nothing.
		return inst, nil, ErrSignature
	}
	if err != nil {
		return inst, nil, apperr.Wrap(err, apperr.EINTERNAL, "installation lookup failed")
	}
	secret, err := c.tenants.SharedSecret(ctx, inst.TenantID)
	if errors.Is(err, keys.ErrShredded) {
		return inst, nil, ErrSignature
	}
	if err != nil {
		return inst, nil, apperr.Wrap(err, apperr.EINTERNAL, "shared secret unavailable")
	}
	if err := t.verifyHS256(secret); err != nil {
		return inst, nil, err
	}
	if err := t.checkTime(c.now()); err != nil {
		return inst, nil, err
	}
	if err := t.checkQSH(c.qshOf(r), allowContext); err != nil {
		return inst, nil, err
	}
	return inst, t, nil
}
