package jirasim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The Forge Invocation Token (FIT): an RS256 JWT with a kid from the JWKS,
// iss forge/invocation-token, aud the app's id, iat/nbf/exp about 25 s
// apart, a jti, the app claim (installationId, apiBaseUrl, id, appVersion,
// environment, module, installation, license) and, for UI calls, context
// and principal. It travels as "authorization: Bearer {FIT}" beside the
// x-b3-traceid and x-b3-spanid headers.

const fitIssuer = "forge/invocation-token"

// FITVariant selects a deliberately broken invocation for testing a
// remote's verification. The zero value is a correct one. A replayed jti is
// no variant: send the same request twice (http.Request.GetBody is set).
type FITVariant int

const (
	FITValid               FITVariant = iota
	FITWrongAudience                  // aud is another app's id; app.id is still this app's
	FITOtherApp                       // minted for another Forge app: aud and app.id are that app's, signed by Forge's key
	FITExpired                        // iat, nbf and exp in the past
	FITNotYetValid                    // nbf (and iat) in the future
	FITUnknownKeyID                   // signed by a key the JWKS does not publish
	FITAlgNone                        // alg "none", no signature
	FITAlgHS256                       // HS256 keyed with the RSA public key's modulus
	FITWrongIssuer                    // iss is not forge/invocation-token
	FITTampered                       // app.installationId changed after signing
	FITMissingTraceHeaders            // no x-b3-traceid / x-b3-spanid headers
	FITMissingKeyID                   // no kid in the header
)

var fitVariantNames = []string{"valid", "wrong-aud", "other-app", "expired", "not-yet-valid", "unknown-kid",
	"alg-none", "alg-hs256", "wrong-iss", "tampered", "missing-trace-headers", "missing-kid"}

func (v FITVariant) String() string {
	if int(v) >= 0 && int(v) < len(fitVariantNames) {
		return fitVariantNames[v]
	}
	return fmt.Sprintf("FITVariant(%d)", int(v))
}

// FITVariants lists every variant, valid first.
func FITVariants() []FITVariant {
	out := make([]FITVariant, len(fitVariantNames))
	for i := range out {
		out[i] = FITVariant(i)
	}
	return out
}

// ParseFITVariant reads a name printed by String ("" is valid).
func ParseFITVariant(s string) (FITVariant, error) {
	if s == "" {
		return FITValid, nil
	}
	if i := slices.Index(fitVariantNames, s); i >= 0 {
		return FITVariant(i), nil
	}
	return 0, fmt.Errorf("jirasim: unknown FIT variant %q (one of %s)", s, strings.Join(fitVariantNames, ", "))
}

// OtherForgeAppID is the app the FITOtherApp variant is minted for.
func (s *Sim) OtherForgeAppID() string { return appARIPrefix + s.uuidFrom("another-forge-app") }

// ForgeCall is one invocation of a remote endpoint the way Forge makes it.
type ForgeCall struct {
	Kind      string            // "event", "scheduledTrigger", "preUninstall" or "ui"
	Endpoint  string            // endpoint key (UI calls: empty means the page's resolver endpoint)
	Module    string            // module key: the UI page, trigger or scheduled trigger
	Method    string            // UI calls; others are POST
	Path      string            // UI calls: the invokeRemote path; others use the endpoint's route
	Headers   map[string]string // UI calls: the invokeRemote headers
	Body      any               // JSON body; json.RawMessage and []byte pass through
	AccountID string            // UI calls: the user in the page
	Variant   FITVariant
}

// NewForgeRequest builds the HTTP request Forge would send the remote for
// c: the URL (remote baseUrl + route or path), the FIT, the trace headers
// and the app system and user tokens the endpoint asks for. Tokens minted
// for it are live, whatever the variant. Send it with any client;
// GetBody is set, so it can be replayed.
func (s *Sim) NewForgeRequest(ctx context.Context, installationID string, c ForgeCall) (*http.Request, error) {
	in, err := s.liveForge(installationID)
	if err != nil {
		return nil, err
	}
	return s.newForgeRequest(ctx, in, c)
}

func (s *Sim) newForgeRequest(ctx context.Context, in *forgeInstall, c ForgeCall) (*http.Request, error) {
	var page *ForgePage
	if c.Kind == "ui" {
		for i := range in.app.Pages {
			if in.app.Pages[i].Key == c.Module {
				page = &in.app.Pages[i]
			}
		}
		if page == nil {
			return nil, fmt.Errorf("jirasim: app %s has no UI module %q", in.AppName, c.Module)
		}
		if c.Endpoint == "" {
			c.Endpoint = page.Endpoint
		}
	}
	ep, ok := in.app.Endpoints[c.Endpoint]
	if !ok {
		return nil, fmt.Errorf("jirasim: app %s has no endpoint %q", in.AppName, c.Endpoint)
	}
	method, path := http.MethodPost, ep.Route
	if c.Kind == "ui" {
		method, path = strings.ToUpper(c.Method), c.Path
		switch method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			return nil, fmt.Errorf("jirasim: invokeRemote method %q is not GET, POST, PUT, PATCH or DELETE", c.Method)
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	target := in.app.Remotes[ep.Remote] + path
	if _, err := url.Parse(target); err != nil {
		return nil, fmt.Errorf("jirasim: remote URL %q: %w", target, err)
	}
	var user = -1
	if c.Kind == "ui" {
		ui, ok := s.data.byAcct[c.AccountID]
		if !ok || s.data.users[ui].Closed {
			return nil, fmt.Errorf("jirasim: no active user %q", c.AccountID)
		}
		user = ui
	}

	var body []byte
	var err error
	switch b := c.Body.(type) {
	case nil:
	case []byte:
		body = b
	case json.RawMessage:
		body = b
	default:
		if body, err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	if method == http.MethodGet {
		body = nil
	}
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range c.Headers {
		// The platform owns these; a page cannot forge or smuggle them.
		lk := strings.ToLower(k)
		if lk == "authorization" || lk == "host" || lk == "content-length" || strings.HasPrefix(lk, "x-forge-") || strings.HasPrefix(lk, "x-b3-") {
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "Forge-Remote (jirasim)")

	// Tokens first: the FIT carries nothing of them, but they are part of
	// the same invocation.
	t := s.ForgeTimings()
	tokensOK := forgeScopeLevel(in.app.Scopes) > scopeNone || slices.Contains(in.app.Scopes, "storage:app")
	if ep.SystemToken && tokensOK && slices.Contains(in.app.Scopes, "read:app-system-token") {
		ttl := t.SystemTokenTTL
		if c.Kind == "scheduledTrigger" {
			ttl = t.TriggerTokenTTL
		}
		tok, _ := s.mintForgeToken(in, tokenSystem, -1, in.botScope, ttl)
		req.Header.Set("x-forge-oauth-system", tok)
	}
	if c.Kind == "ui" && ep.UserToken && tokensOK && slices.Contains(in.app.Scopes, "read:app-user-token") {
		tok, _ := s.mintForgeToken(in, tokenUser, user, in.botScope, t.UserTokenTTL)
		req.Header.Set("x-forge-oauth-user", tok)
	}

	claims := s.fitClaims(in, c, page, ep, user)
	fit, err := s.signFIT(claims, c.Variant)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+fit)
	if c.Variant != FITMissingTraceHeaders {
		req.Header.Set("x-b3-traceid", randomHex(16))
		req.Header.Set("x-b3-spanid", randomHex(8))
	}
	return req, nil
}

// fitClaims builds the FIT payload; the variant's changes to claims are
// made here, its changes to the signature in signFIT.
func (s *Sim) fitClaims(in *forgeInstall, c ForgeCall, page *ForgePage, ep ForgeEndpoint, user int) map[string]any {
	t := s.ForgeTimings()
	now := s.now().Unix()
	life := int64(t.FITLifetime.Seconds())
	iat, nbf, exp := now, now, now+life
	switch c.Variant {
	case FITExpired:
		iat, nbf, exp = now-10*life, now-10*life, now-9*life
	case FITNotYetValid:
		iat, nbf, exp = now+10*life, now+10*life, now+11*life
	}
	module := map[string]any{"type": "core:endpoint", "key": c.Endpoint}
	if page != nil {
		module = map[string]any{"type": page.Type, "key": page.Key}
	}
	app := map[string]any{
		"installationId": in.ID,
		"apiBaseUrl":     in.APIBaseURL,
		"id":             in.AppID,
		"appVersion":     in.Version,
		"environment":    map[string]any{"type": in.EnvironmentType, "id": in.EnvironmentID},
		"module":         module,
		"installation":   map[string]any{"id": in.ID, "contexts": []string{in.WorkspaceARI}},
	}
	if lic := s.fitLicense(in); lic != nil {
		app["license"] = lic
	}
	claims := map[string]any{
		"iss": fitIssuer, "aud": in.AppID, "iat": iat, "nbf": nbf, "exp": exp, "jti": s.newUUID(), "app": app,
	}
	if page != nil {
		appUUID := strings.TrimPrefix(in.AppID, appARIPrefix)
		claims["context"] = map[string]any{
			"cloudId": in.CloudID, "siteUrl": s.BaseURL(), "moduleKey": page.Key,
			"localId":   "ari:cloud:ecosystem::extension/" + appUUID + "/" + in.EnvironmentID + "/static/" + page.Key,
			"extension": map[string]any{"type": page.Type},
		}
		claims["principal"] = s.data.users[user].AccountID
	}
	switch c.Variant {
	case FITWrongAudience:
		claims["aud"] = s.OtherForgeAppID()
	case FITOtherApp:
		claims["aud"] = s.OtherForgeAppID()
		app["id"] = s.OtherForgeAppID()
	case FITWrongIssuer:
		claims["iss"] = "forge/invocation-token-evil"
	}
	return claims
}

// fitLicense is app.license: only for PRODUCTION installs of apps with
// licensing enabled, and not when the licence is scripted "none".
func (s *Sim) fitLicense(in *forgeInstall) map[string]any {
	if in.EnvironmentType != "PRODUCTION" || !in.app.Licensing || in.License == "none" {
		return nil
	}
	active := in.License == "active"
	return map[string]any{
		"isActive": active, "active": active, "billingPeriod": "MONTHLY", "type": "COMMERCIAL", "isEvaluation": false,
		"ccpEntitlementId": s.uuidFrom("ccp/" + in.ID), "ccpEntitlementSlug": "E-" + strings.ToUpper(s.uuidFrom("slug/" + in.ID)[:8]),
		"supportEntitlementNumber": "SEN-" + fmt.Sprint(20000000+s.opts.Seed%9000000),
		"subscriptionEndDate":      nil, "trialEndDate": nil,
	}
}

func (s *Sim) signFIT(claims map[string]any, v FITVariant) (string, error) {
	s.forge.mu.Lock()
	key := s.forge.keys.signer()
	s.forge.mu.Unlock()
	h := jwtHeader{Alg: "RS256", Typ: "JWT", Kid: key.kid}
	switch v {
	case FITUnknownKeyID:
		key = strangerKey()
		h.Kid = key.kid
	case FITMissingKeyID:
		h.Kid = ""
	case FITAlgNone:
		return signJWT(jwtHeader{Alg: "none", Typ: "JWT", Kid: h.Kid}, claims, nil)
	case FITAlgHS256:
		return signJWT(jwtHeader{Alg: "HS256", Typ: "JWT", Kid: h.Kid}, claims, hs256(key.priv.N.Bytes()))
	}
	tok, err := signJWT(h, claims, rs256(key.priv))
	if err != nil || v != FITTampered {
		return tok, err
	}
	// Re-encode the payload with another installationId, keep the signature.
	app := claims["app"].(map[string]any)
	app["installationId"] = installationARIPrefix + s.uuidFrom("tampered-installation")
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	parts := strings.Split(tok, ".")
	return parts[0] + "." + b64.EncodeToString(cb) + "." + parts[2], nil
}

// newUUID is a random version-4 UUID (jti, trace ids are hex).
func (s *Sim) newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
