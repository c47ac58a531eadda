package jirasim

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// principal is who a request acts as.
type principal struct {
	kind       string // "user" (Basic), "app" (Connect JWT), "bearer" (app acting as a user), "forge-app", "forge-user"
	user       int    // user index; -1 for the app itself
	addonKey   string
	connectKey string // a Forge app's app.connect.key: it may read that Connect app's properties
	browse     []bool // project indexes this caller may browse
	scope      int    // scope level (scopeRead…); users are not limited
}

// Connect scope levels: each implies the ones below it.
const (
	scopeNone = iota
	scopeRead
	scopeWrite
	scopeDelete
	scopeProjectAdmin
	scopeAdmin
)

func scopeLevel(scopes []string) int {
	lvl := scopeNone
	for _, sc := range scopes {
		switch strings.ToUpper(sc) {
		case "READ":
			lvl = max(lvl, scopeRead)
		case "WRITE":
			lvl = max(lvl, scopeWrite)
		case "DELETE":
			lvl = max(lvl, scopeDelete)
		case "PROJECT_ADMIN":
			lvl = max(lvl, scopeProjectAdmin)
		case "ADMIN":
			lvl = max(lvl, scopeAdmin)
		}
	}
	return lvl
}

// tenant keys rate limits: apps (and their user tokens) share one budget per
// site, Basic users have their own.
func (p *principal) tenant() string {
	if p.addonKey != "" {
		return "app:" + p.addonKey
	}
	return "user:" + strconv.Itoa(p.user)
}

const notAuthenticated = "You are not authenticated. Authentication required to perform this operation."

var errNoCredentials = errors.New(notAuthenticated)

// authenticate resolves the caller from HTTP Basic, a Connect JWT
// (Authorization: JWT or ?jwt=) or an OAuth bearer token.
func (s *Sim) authenticate(r *http.Request) (*principal, error) {
	if viaGateway(r) {
		return s.authGateway(r) // /ex/jira/{cloudId}: Forge bearer tokens only
	}
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		return s.authBasic(cred)
	case strings.EqualFold(scheme, "JWT"):
		return s.authJWT(r, strings.TrimSpace(cred))
	case strings.EqualFold(scheme, "Bearer"):
		return s.authBearer(strings.TrimSpace(cred))
	case h == "" && r.URL.Query().Get("jwt") != "":
		return s.authJWT(r, r.URL.Query().Get("jwt"))
	case h != "":
		return nil, fmt.Errorf("unsupported authorization scheme %q", scheme)
	}
	return nil, errNoCredentials
}

func (s *Sim) authBasic(cred string) (*principal, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return nil, errors.New("malformed Basic credentials")
	}
	email, token, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, errors.New("malformed Basic credentials")
	}
	i, found := s.data.byEmail[strings.ToLower(email)]
	// Compare even when the user is unknown so timing says nothing.
	want := "x"
	if found {
		want = s.data.users[i].APIToken
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 || !found || s.data.users[i].Closed {
		return nil, errors.New("invalid email or API token")
	}
	return &principal{kind: "user", user: i, browse: s.data.users[i].browse}, nil
}

// authJWT verifies an app's own JWT: iss is the addon key, HS256 with the
// installation's shared secret, a live exp and a qsh matching this request.
func (s *Sim) authJWT(r *http.Request, tok string) (*principal, error) {
	t, err := parseJWT(tok)
	if err != nil {
		return nil, err
	}
	iss := t.str("iss")
	s.mu.RLock()
	in := s.installs[iss]
	var secret string
	var enabled bool
	var scopes []string
	if in != nil {
		secret, enabled, scopes = in.SharedSecret, in.Enabled, in.desc.Scopes
	}
	base := s.baseURL
	s.mu.RUnlock()
	if in == nil {
		return nil, fmt.Errorf("JWT issuer %q is not an installed app", iss)
	}
	if err := t.verifyHS256([]byte(secret)); err != nil {
		return nil, err
	}
	now := s.now().Unix()
	exp, ok := t.num("exp")
	if !ok || exp <= now {
		return nil, errors.New("JWT expired or without exp")
	}
	if iat, ok := t.num("iat"); !ok || iat > now+60 {
		return nil, errors.New("JWT iat missing or in the future")
	}
	bu, _ := url.Parse(base)
	want := QSH(r.Method, r.URL.EscapedPath(), bu.EscapedPath(), r.URL.RawQuery)
	if subtle.ConstantTimeCompare([]byte(t.str("qsh")), []byte(want)) != 1 {
		return nil, errors.New("JWT qsh does not match the request")
	}
	if !enabled {
		return nil, fmt.Errorf("app %q is disabled", iss)
	}
	return &principal{kind: "app", user: -1, addonKey: iss, browse: s.allProjects(), scope: scopeLevel(scopes)}, nil
}

func (s *Sim) authBearer(tok string) (*principal, error) {
	s.mu.RLock()
	bt := s.tokens[tok]
	s.mu.RUnlock()
	if bt == nil || !s.now().Before(bt.expires) {
		return nil, errors.New("bearer token unknown or expired")
	}
	s.mu.RLock()
	in := s.installs[bt.addonKey]
	ok := in != nil && in.Enabled && in.ClientKey == bt.clientKey
	s.mu.RUnlock()
	if !ok {
		return nil, errors.New("bearer token's app is no longer installed")
	}
	u := s.data.users[bt.user]
	return &principal{kind: "bearer", user: bt.user, addonKey: bt.addonKey, browse: u.browse, scope: bt.scope}, nil
}

func (s *Sim) allProjects() []bool {
	b := make([]bool, len(s.data.projects))
	for i := range b {
		b[i] = true
	}
	return b
}

type bearerToken struct {
	addonKey  string
	clientKey string
	user      int
	scope     int
	expires   time.Time
}
