package jirasim

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// The JWT-bearer grant a Connect app uses to act as a user. Real Jira runs
// this at https://oauth-2-authorization-server.services.atlassian.com; the
// sim serves it at {baseURL}/oauth2/token and accepts that audience.

const (
	oauthAudience   = "https://oauth-2-authorization-server.services.atlassian.com"
	jwtBearerGrant  = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	clientIDPrefix  = "urn:atlassian:connect:clientid:"
	accountIDPrefix = "urn:atlassian:connect:useraccountid:"
	tokenLifetime   = 900 * time.Second
)

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Sim) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != jwtBearerGrant {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be "+jwtBearerGrant)
		return
	}
	t, err := parseJWT(r.PostForm.Get("assertion"))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion is not a JWT")
		return
	}
	clientID, ok := strings.CutPrefix(t.str("iss"), clientIDPrefix)
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "iss must be "+clientIDPrefix+"{oauthClientId}")
		return
	}
	s.mu.RLock()
	var in *installation
	for _, cand := range s.installs {
		if cand.OAuthClientID == clientID {
			in = cand
		}
	}
	var secret, addon, clientKey string
	var declared []string
	var enabled bool
	if in != nil {
		secret, addon, clientKey, declared, enabled = in.SharedSecret, in.AddonKey, in.ClientKey, in.desc.Scopes, in.Enabled
	}
	site := s.baseURL
	s.mu.RUnlock()
	if in == nil || !enabled {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "no enabled installation has this OAuth client id")
		return
	}
	if err := t.verifyHS256([]byte(secret)); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion signature: "+err.Error())
		return
	}
	now := s.now().Unix()
	exp, okExp := t.num("exp")
	_, okIat := t.num("iat")
	switch {
	case !okExp || !okIat:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion needs iat and exp")
		return
	case exp <= now:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion expired")
		return
	case exp > now+60+5: // 60 s allowed, 5 s clock skew
		oauthError(w, http.StatusBadRequest, "invalid_grant", "assertion exp must be at most 60 seconds in the future")
		return
	case t.str("aud") != oauthAudience && !t.audience(oauthAudience):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "aud must be "+oauthAudience)
		return
	case strings.TrimSuffix(t.str("tnt"), "/") != site:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "tnt must be the site's base URL")
		return
	}
	acct, ok := strings.CutPrefix(t.str("sub"), accountIDPrefix)
	ui, found := s.data.byAcct[acct]
	if !ok || !found || s.data.users[ui].Closed {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "sub must be "+accountIDPrefix+"{accountId} of an active user")
		return
	}
	requested := strings.Fields(strings.ToUpper(r.PostForm.Get("scope")))
	if !containsFold(declared, "ACT_AS_USER") {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "the app's descriptor does not declare ACT_AS_USER")
		return
	}
	for _, sc := range requested {
		if !containsFold(declared, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "scope "+sc+" is not declared in the app's descriptor")
			return
		}
	}
	lvl := scopeLevel(requested)
	if lvl == scopeNone {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "request at least READ")
		return
	}
	var raw [24]byte
	rand.Read(raw[:])
	tok := "simat_" + hex.EncodeToString(raw[:])
	s.mu.Lock()
	s.tokens[tok] = &bearerToken{addonKey: addon, clientKey: clientKey, user: ui, scope: lvl, expires: s.now().Add(tokenLifetime)}
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "expires_in": int(tokenLifetime / time.Second), "token_type": "Bearer"})
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
