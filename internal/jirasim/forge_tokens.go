package jirasim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// App system tokens (x-forge-oauth-system), app user tokens
// (x-forge-oauth-user) and offline impersonation tokens. Atlassian says to
// treat them as opaque; they are JWTs whose exp is the expiry, so the sim
// mints JWTs too and remembers each one: a token is good only while the sim
// knows it, it has not expired and its installation is still installed.

const (
	tokenSystem  = "system"
	tokenUser    = "user"
	tokenOffline = "offline"
)

type forgeToken struct {
	kind    string
	install string
	user    int // -1 for the app's bot
	scope   int
	expires time.Time
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// mintForgeToken issues a token for in; f.mu must not be held.
func (s *Sim) mintForgeToken(in *forgeInstall, kind string, user int, scope int, ttl time.Duration) (string, time.Time) {
	now := s.now()
	exp := now.Add(ttl + time.Second - 1).Truncate(time.Second) // whole seconds, never short of ttl
	sub := in.BotAccountID
	if user >= 0 {
		sub = s.data.users[user].AccountID
	}
	f := s.forge
	tok, _ := signJWT(jwtHeader{Alg: "HS256", Typ: "JWT"}, map[string]any{
		"iss": "jirasim-forge", "sub": sub, "aud": "api.atlassian.com",
		"iat": now.Unix(), "exp": exp.Unix(), "jti": randomHex(16),
	}, hs256(f.tokenSalt))
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) > 20000 {
		for t, ft := range f.tokens {
			if !now.Before(ft.expires) {
				delete(f.tokens, t)
			}
		}
	}
	f.tokens[tok] = &forgeToken{kind: kind, install: in.ID, user: user, scope: scope, expires: exp}
	f.count(&f.stats.TokensIssued, kind)
	return tok, exp
}

var (
	errForgeTokenUnknown = errors.New("the token is not one this site issued, or its installation was uninstalled")
	errForgeTokenExpired = errors.New("the token has expired")
)

// forgeTokenOf resolves a bearer token to its record and installation.
func (s *Sim) forgeTokenOf(tok string) (forgeToken, *forgeInstall, error) {
	f := s.forge
	f.mu.Lock()
	ft := f.tokens[strings.TrimSpace(tok)]
	var in *forgeInstall
	if ft != nil {
		if cur := f.installs[ft.install]; cur != nil && !cur.removed {
			cp := *cur
			in = &cp
		}
	}
	f.mu.Unlock()
	switch {
	case ft == nil || in == nil:
		return forgeToken{}, nil, errForgeTokenUnknown
	case !s.now().Before(ft.expires):
		return forgeToken{}, nil, errForgeTokenExpired
	}
	return *ft, in, nil
}

// forgePrincipal is who a Forge token acts as in the product API: the app's
// bot (every project, the app's scopes) or a user (that user's projects,
// limited to the app's scopes, or its impersonation scopes offline).
func (s *Sim) forgePrincipal(ft forgeToken, in *forgeInstall) (*principal, error) {
	botKey := "forge-" + strings.TrimPrefix(in.AppID, appARIPrefix)
	if ft.kind == tokenSystem {
		return &principal{kind: "forge-app", user: -1, addonKey: botKey, connectKey: in.ConnectKey, browse: s.allProjects(), scope: ft.scope}, nil
	}
	u := s.data.users[ft.user]
	if u.Closed {
		return nil, errors.New("the token's user account is closed")
	}
	return &principal{kind: "forge-user", user: ft.user, addonKey: botKey, browse: u.browse, scope: ft.scope}, nil
}
