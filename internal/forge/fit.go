package forge

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"ferry/internal/tenant"
)

// The Forge Invocation Token (FIT) is an RS256 JWT that Forge puts on every
// call to a remote as "Authorization: Bearer …", beside the x-b3-traceid and
// x-b3-spanid headers. Verifying it is all that stands between the internet
// and a tenant, so every check is here, in the order that lets a token that
// would fail anyway cost nothing: header and claims first (RS256 and nothing
// else, whatever the header says; iss; aud pinned to FERRY_FORGE_APP_ID and
// never read from the token; app.id the same; exp/nbf/iat with a small skew
// and a bounded lifetime; the installation and apiBaseUrl in their documented
// forms), then the key by kid, then the signature. The jti is used up by the
// caller in the transaction of whatever the invocation changes
// (tenant.Store.Contact, Uninstalled), so of two presentations of one token
// exactly one does anything. Tenant, site and user come only from here.

var (
	ErrMissingToken  = errors.New("forge: the request carries no Forge Invocation Token")
	ErrMalformed     = errors.New("forge: the FIT is malformed")
	ErrAlgorithm     = errors.New("forge: the FIT algorithm is not RS256")
	ErrUnknownKeyID  = errors.New("forge: the FIT key id is missing or not in Forge's key set")
	ErrSignature     = errors.New("forge: the FIT signature is invalid")
	ErrIssuer        = errors.New("forge: the FIT issuer is not forge/invocation-token")
	ErrAudience      = errors.New("forge: the FIT audience is not this app")
	ErrExpired       = errors.New("forge: the FIT has expired or is not yet valid")
	ErrTraceHeaders  = errors.New("forge: the x-b3-traceid and x-b3-spanid headers are missing or malformed")
	ErrClaims        = errors.New("forge: the FIT claims are incomplete or malformed")
	ErrReplayed      = errors.New("forge: this FIT was used before")
	ErrWrongEndpoint = errors.New("forge: this invocation is not for this endpoint")
)

// Issuer is the iss of every FIT.
const Issuer = "forge/invocation-token"

const (
	// clockSkew is how far Forge's clock and ours may be apart.
	clockSkew = 30 * time.Second
	// maxFITLifetime bounds exp - nbf: a FIT lives about 25 s, so a token
	// valid for longer is not one Forge minted for one invocation, and the
	// record of used jtis stays small.
	maxFITLifetime = 10 * time.Minute
	// maxFITLen bounds the work an unauthenticated caller can make Ferry do.
	maxFITLen = 16 << 10
	// maxOAuthTokenLen bounds the app system and user tokens kept in memory.
	maxOAuthTokenLen = 16 << 10
)

// Documented minimum lifetimes of an app system token, used when its exp
// cannot be read: at least 55 minutes for an endpoint invocation, at least
// two hours when a scheduled trigger invokes the remote directly.
const (
	SystemTokenMinTTL  = 55 * time.Minute
	TriggerTokenMinTTL = 2 * time.Hour
)

var (
	installationARI = regexp.MustCompile(`^ari:cloud:ecosystem::installation/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	appARI          = regexp.MustCompile(`^ari:cloud:ecosystem::app/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	uuidPattern     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	accountID       = regexp.MustCompile(`^[A-Za-z0-9:_-]{1,128}$`)
	hex16or32       = regexp.MustCompile(`^([0-9a-fA-F]{16}|[0-9a-fA-F]{32})$`)
	hex16           = regexp.MustCompile(`^[0-9a-fA-F]{16}$`)
)

// ValidAppID reports whether id is an app ARI (ari:cloud:ecosystem::app/{uuid}).
func ValidAppID(id string) bool { return appARI.MatchString(id) }

// Invocation is a verified Forge invocation: what the FIT and its request
// headers say, after every check. Tokens are kept in memory only.
type Invocation struct {
	InstallationID string // app.installationId
	AppID          string // app.id (= FERRY_FORGE_APP_ID)
	AppVersion     string
	Environment    string // DEVELOPMENT, STAGING or PRODUCTION
	ModuleType     string // app.module.type, e.g. core:endpoint or jira:adminPage
	ModuleKey      string
	APIBaseURL     string // app.apiBaseUrl: where product calls go
	CloudID        string // from APIBaseURL
	WorkspaceARI   string // a workspace context ARI from app.installation.contexts, if any
	SiteURL        string // context.siteUrl of a UI invocation
	Principal      string // the user of a UI invocation (accountId): memory only, never stored or logged
	License        tenant.License
	Expires        time.Time // the FIT's exp

	SystemToken        string // x-forge-oauth-system: memory only, never logged
	SystemTokenExpires time.Time
	UserToken          string // x-forge-oauth-user: memory only, never logged

	Nonce tenant.Nonce // the jti as the record of used tokens names it
}

// LogValue keeps the principal and the tokens out of logs even if an
// Invocation is logged.
func (in Invocation) LogValue() slog.Value {
	return slog.GroupValue(slog.String("installation", in.InstallationID), slog.String("module", in.ModuleKey))
}

// Verifier checks FITs for one app.
type Verifier struct {
	appID         string
	apiOrigin     string // scheme://host of Atlassian's API gateway (FERRY_FORGE_GRAPHQL_URL's origin)
	allowLoopback bool
	keys          *jwks
	now           func() time.Time
}

// VerifierOptions configure NewVerifier.
type VerifierOptions struct {
	AppID         string // FERRY_FORGE_APP_ID
	JWKSURL       string // FERRY_FORGE_JWKS_URL
	APIOrigin     string // where app.apiBaseUrl must point (the API gateway)
	AllowLoopback bool   // the simulator
	JWKSClient    Doer   // egress.ForgeKeys
	Now           func() time.Time
}

// NewVerifier returns a verifier pinned to one app id.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if !ValidAppID(o.AppID) {
		return nil, errors.New("forge: the app id is not ari:cloud:ecosystem::app/{uuid}")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u, err := url.Parse(o.APIOrigin)
	if err != nil || u.Host == "" {
		return nil, errors.New("forge: the API gateway origin is not an absolute URL")
	}
	return &Verifier{appID: o.AppID, apiOrigin: strings.ToLower(u.Scheme + "://" + u.Host), allowLoopback: o.AllowLoopback,
		keys: newJWKS(o.JWKSURL, o.JWKSClient, o.Now), now: o.Now}, nil
}

// KeyFetches reports how often the key set was fetched (tests, benchmark).
func (v *Verifier) KeyFetches() int { return v.keys.fetches() }

var b64 = base64.RawURLEncoding

type fitHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// audience is a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// numericDate reads a JSON number of seconds (integer or not).
type numericDate struct {
	set bool
	t   time.Time
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if f < 0 || f > 1e11 {
		return errors.New("date out of range")
	}
	d.set, d.t = true, time.Unix(0, int64(f*1e9))
	return nil
}

type fitClaims struct {
	Iss       string      `json:"iss"`
	Aud       audience    `json:"aud"`
	Iat       numericDate `json:"iat"`
	Nbf       numericDate `json:"nbf"`
	Exp       numericDate `json:"exp"`
	Jti       string      `json:"jti"`
	Principal *string     `json:"principal"`
	App       struct {
		InstallationID string `json:"installationId"`
		APIBaseURL     string `json:"apiBaseUrl"`
		ID             string `json:"id"`
		AppVersion     string `json:"appVersion"`
		Environment    struct {
			Type string `json:"type"`
		} `json:"environment"`
		Module struct {
			Type string `json:"type"`
			Key  string `json:"key"`
		} `json:"module"`
		Installation struct {
			ID       string            `json:"id"`
			Contexts []json.RawMessage `json:"contexts"`
		} `json:"installation"`
		License *struct {
			IsActive *bool `json:"isActive"`
		} `json:"license"`
	} `json:"app"`
	Context *struct {
		CloudID string `json:"cloudId"`
		SiteURL string `json:"siteUrl"`
	} `json:"context"`
}

// ParsedFIT is a FIT split and decoded, not yet verified.
type ParsedFIT struct {
	header       fitHeader
	claims       fitClaims
	signingInput string
	sig          []byte
}

// ParseFIT decodes a FIT without verifying anything but its shape.
func ParseFIT(raw string) (*ParsedFIT, error) {
	if len(raw) > maxFITLen {
		return nil, ErrMalformed
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, ErrMalformed
	}
	cb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrMalformed
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, ErrMalformed
	}
	p := &ParsedFIT{signingInput: parts[0] + "." + parts[1], sig: sig}
	if err := strictJSON(hb, &p.header); err != nil {
		return nil, ErrMalformed
	}
	if err := strictJSON(cb, &p.claims); err != nil {
		return nil, ErrMalformed
	}
	return p, nil
}

// strictJSON decodes one JSON object and refuses trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// bearer reads "Authorization: Bearer <FIT>".
func bearer(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Verify checks the request's FIT and headers and returns the invocation.
// It does not use the jti up: the caller does, with its change.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Invocation, error) {
	raw := bearer(r)
	if raw == "" {
		return nil, ErrMissingToken
	}
	if !hex16or32.MatchString(r.Header.Get("x-b3-traceid")) || !hex16.MatchString(r.Header.Get("x-b3-spanid")) {
		return nil, ErrTraceHeaders
	}
	p, err := ParseFIT(raw)
	if err != nil {
		return nil, err
	}
	// RS256 and nothing else, whatever the header says: no "none", no
	// HS256 keyed with a public key.
	if p.header.Alg != "RS256" {
		return nil, ErrAlgorithm
	}
	if !validKid(p.header.Kid) {
		return nil, ErrUnknownKeyID
	}
	inv, err := v.checkClaims(p)
	if err != nil {
		return nil, err
	}
	pub, err := v.keys.key(ctx, p.header.Kid)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(p.signingInput))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], p.sig) != nil {
		return nil, ErrSignature
	}
	inv.SystemToken, inv.UserToken = r.Header.Get("x-forge-oauth-system"), r.Header.Get("x-forge-oauth-user")
	if len(inv.SystemToken) > maxOAuthTokenLen || len(inv.UserToken) > maxOAuthTokenLen {
		return nil, ErrClaims
	}
	return inv, nil
}

// checkClaims checks everything that needs no key.
func (v *Verifier) checkClaims(p *ParsedFIT) (*Invocation, error) {
	c := p.claims
	if c.Iss != Issuer {
		return nil, ErrIssuer
	}
	// aud is this app's id, as configured: every audience the token names
	// must be it, and app.id too. A FIT minted for another app, however
	// valid, is not for Ferry.
	if len(c.Aud) == 0 {
		return nil, ErrAudience
	}
	for _, a := range c.Aud {
		if a != v.appID {
			return nil, ErrAudience
		}
	}
	if c.App.ID != v.appID {
		return nil, ErrAudience
	}
	now := v.now()
	if !c.Exp.set || !c.Nbf.set || !c.Iat.set || c.Jti == "" || len(c.Jti) > 256 {
		return nil, ErrClaims
	}
	if !now.Before(c.Exp.t.Add(clockSkew)) || now.Add(clockSkew).Before(c.Nbf.t) || now.Add(clockSkew).Before(c.Iat.t) {
		return nil, ErrExpired
	}
	if c.Exp.t.Sub(c.Nbf.t) > maxFITLifetime || c.Exp.t.Before(c.Nbf.t) {
		return nil, ErrExpired
	}
	if !installationARI.MatchString(c.App.InstallationID) || (c.App.Installation.ID != "" && c.App.Installation.ID != c.App.InstallationID) {
		return nil, ErrClaims
	}
	cloud, err := v.cloudOf(c.App.APIBaseURL)
	if err != nil {
		return nil, err
	}
	inv := &Invocation{InstallationID: c.App.InstallationID, AppID: c.App.ID, AppVersion: c.App.AppVersion,
		Environment: c.App.Environment.Type, ModuleType: c.App.Module.Type, ModuleKey: c.App.Module.Key,
		APIBaseURL: strings.TrimSuffix(c.App.APIBaseURL, "/"), CloudID: cloud, Expires: c.Exp.t,
		WorkspaceARI: workspaceOf(c.App.Installation.Contexts, cloud), License: tenant.LicenseNone}
	if c.App.License != nil {
		if c.App.License.IsActive != nil && *c.App.License.IsActive {
			inv.License = tenant.LicenseActive
		} else {
			inv.License = tenant.LicenseInactive
		}
	}
	if c.Principal != nil {
		if !accountID.MatchString(*c.Principal) {
			return nil, ErrClaims
		}
		inv.Principal = *c.Principal
	}
	if c.Context != nil {
		if c.Context.CloudID != "" && c.Context.CloudID != cloud {
			return nil, ErrClaims
		}
		if s := c.Context.SiteURL; s != "" {
			if u, err := url.Parse(s); err == nil && (u.Scheme == "https" || (u.Scheme == "http" && v.allowLoopback)) && u.Host != "" && u.User == nil {
				inv.SiteURL = strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/")
			}
		}
	}
	sum := sha256.Sum256([]byte("forge-fit-jti\x00" + v.appID + "\x00" + c.Jti))
	inv.Nonce = tenant.Nonce{Digest: hex.EncodeToString(sum[:]), Expires: c.Exp.t.Add(clockSkew)}
	return inv, nil
}

// cloudOf checks app.apiBaseUrl — Atlassian's API gateway, /ex/jira/{cloudId}
// — and returns the cloudId. Product calls go there with the tenant's
// tokens, so it must be the gateway Ferry is configured with.
func (v *Verifier) cloudOf(apiBase string) (string, error) {
	u, err := url.Parse(apiBase)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", ErrClaims
	}
	if strings.ToLower(u.Scheme+"://"+u.Host) != v.apiOrigin {
		return "", ErrClaims
	}
	rest, ok := strings.CutPrefix(strings.TrimSuffix(u.EscapedPath(), "/"), "/ex/jira/")
	if !ok || !uuidPattern.MatchString(rest) {
		return "", ErrClaims
	}
	return rest, nil
}

// workspaceOf picks the Jira workspace ARI of the installation's contexts:
// the context offline user impersonation takes. Contexts are ARI strings
// or objects naming one; anything else is ignored.
func workspaceOf(contexts []json.RawMessage, cloud string) string {
	prefix := "ari:cloud:jira:" + cloud + ":workspace/"
	for _, raw := range contexts {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var o map[string]any
			if json.Unmarshal(raw, &o) != nil {
				continue
			}
			for _, k := range []string{"id", "ari", "name", "contextAri"} {
				if v, ok := o[k].(string); ok && strings.HasPrefix(v, prefix) {
					s = v
					break
				}
			}
		}
		if id, ok := strings.CutPrefix(s, prefix); ok && id != "" && len(s) <= 256 && !strings.ContainsAny(id, " /?#") {
			return s
		}
	}
	return ""
}

// tokenExpiry reads the exp of an app system token. Atlassian says to treat
// the token as opaque but documents exp as its expiry; a token whose exp
// cannot be read is taken to live the documented minimum.
func tokenExpiry(tok string, now time.Time, minTTL time.Duration) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) == 3 {
		if b, err := b64.DecodeString(parts[1]); err == nil {
			var c struct {
				Exp numericDate `json:"exp"`
			}
			if json.Unmarshal(b, &c) == nil && c.Exp.set {
				exp := c.Exp.t
				if exp.After(now.Add(24 * time.Hour)) {
					exp = now.Add(24 * time.Hour)
				}
				return exp
			}
		}
	}
	return now.Add(minTTL)
}
