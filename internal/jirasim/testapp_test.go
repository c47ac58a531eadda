package jirasim

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testApp is a minimal Connect app that verifies lifecycle callbacks the way
// Atlassian documents it, using golang-jwt rather than the sim's own JWT code.
type testApp struct {
	t      testing.TB
	srv    *httptest.Server
	simURL string
	key    string
	scopes []string

	mu     sync.Mutex
	secret string
	events []lifecycleEvent
}

type lifecycleEvent struct {
	Event  string
	Status int
	Err    string
	Body   map[string]any
}

func newTestApp(t testing.TB, simURL, key string, scopes ...string) *testApp {
	if scopes == nil {
		scopes = []string{"READ", "WRITE", "ACT_AS_USER"}
	}
	a := &testApp{t: t, simURL: simURL, key: key, scopes: scopes}
	m := http.NewServeMux()
	m.HandleFunc("GET /atlassian-connect.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"key": a.key, "name": "Test " + a.key, "baseUrl": a.srv.URL,
			"authentication": map[string]string{"type": "jwt"},
			"apiMigrations":  map[string]bool{"signed-install": true},
			"lifecycle":      map[string]string{"installed": "/lifecycle/installed", "uninstalled": "/lifecycle/uninstalled", "enabled": "/lifecycle/enabled", "disabled": "/lifecycle/disabled"},
			"scopes":         a.scopes,
			"modules": map[string]any{
				"generalPages": []any{map[string]any{"key": "home", "name": map[string]string{"value": "Ferry"}, "url": "/app/home?project={project.key}&mode=full view"}},
				"adminPages":   []any{map[string]any{"key": "admin", "name": map[string]string{"value": "Ferry admin"}, "url": "/app/admin"}},
			},
		})
	})
	m.HandleFunc("POST /lifecycle/{event}", a.lifecycle)
	a.srv = httptest.NewServer(m)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *testApp) lifecycle(w http.ResponseWriter, r *http.Request) {
	event := r.PathValue("event")
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(raw, &body)
	status, err := a.verify(r, event, body)
	a.mu.Lock()
	ev := lifecycleEvent{Event: event, Status: status, Body: body}
	if err != nil {
		ev.Err = err.Error()
	}
	a.events = append(a.events, ev)
	if err == nil && event == "installed" {
		a.secret, _ = body["sharedSecret"].(string)
	}
	a.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *testApp) verify(r *http.Request, event string, body map[string]any) (int, error) {
	tokStr, ok := strings.CutPrefix(r.Header.Get("Authorization"), "JWT ")
	if !ok {
		return http.StatusUnauthorized, errors.New("no JWT")
	}
	asym := event == "installed" || event == "uninstalled"
	var claims jwt.MapClaims
	keyFunc := func(tok *jwt.Token) (any, error) {
		if !asym {
			a.mu.Lock()
			defer a.mu.Unlock()
			return []byte(a.secret), nil
		}
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		resp, err := http.Get(a.simURL + "/connect-install-keys/" + url.PathEscape(kid))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("key %s: HTTP %d", kid, resp.StatusCode)
		}
		pemBytes, _ := io.ReadAll(resp.Body)
		blk, _ := pem.Decode(pemBytes)
		if blk == nil {
			return nil, errors.New("bad PEM")
		}
		return x509.ParsePKIXPublicKey(blk.Bytes)
	}
	alg := "HS256"
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithIssuedAt()}
	if asym {
		alg = "RS256"
		opts = append(opts, jwt.WithAudience(a.srv.URL))
	}
	opts = append(opts, jwt.WithValidMethods([]string{alg}))
	if _, err := jwt.ParseWithClaims(tokStr, &claims, keyFunc, opts...); err != nil {
		return http.StatusUnauthorized, err
	}
	want := QSH(r.Method, r.URL.EscapedPath(), "", r.URL.RawQuery)
	if claims["qsh"] != want {
		return http.StatusUnauthorized, fmt.Errorf("qsh %v, want %s", claims["qsh"], want)
	}
	if claims["iss"] != body["clientKey"] {
		return http.StatusForbidden, errors.New("iss does not match the body's clientKey")
	}
	return 0, nil
}

func (a *testApp) eventsCopy() []lifecycleEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]lifecycleEvent(nil), a.events...)
}

func (a *testApp) lastEvent() lifecycleEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) == 0 {
		return lifecycleEvent{}
	}
	return a.events[len(a.events)-1]
}

// install installs the app on s with a valid install and fails the test otherwise.
func (a *testApp) install(s *Sim) Installation {
	a.t.Helper()
	in, err := s.Install(context.Background(), a.srv.URL, InstallValid)
	if err != nil {
		a.t.Fatalf("install: %v", err)
	}
	return in
}

// appJWT signs an app→Jira request as Connect apps do (iss = addon key).
func appJWT(t testing.TB, in Installation, method, pathAndQuery string) string {
	t.Helper()
	u, err := url.Parse(pathAndQuery)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": in.AddonKey, "iat": now.Unix(), "exp": now.Add(3 * time.Minute).Unix(),
		"qsh": QSH(method, u.EscapedPath(), "", u.RawQuery),
	})
	s, err := tok.SignedString([]byte(in.SharedSecret))
	if err != nil {
		t.Fatal(err)
	}
	return "JWT " + s
}

// bearerFor runs the JWT-bearer grant for accountID and returns the token.
func bearerFor(t testing.TB, base string, in Installation, accountID, scope string) string {
	t.Helper()
	return bearerAt(t, base, in, accountID, scope, time.Now())
}

// bearerAt is bearerFor with the assertion dated now (a sim on a fake clock).
func bearerAt(t testing.TB, base string, in Installation, accountID, scope string, now time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": clientIDPrefix + in.OAuthClientID, "sub": accountIDPrefix + accountID, "tnt": in.BaseURL,
		"aud": oauthAudience, "iat": now.Unix(), "exp": now.Add(50 * time.Second).Unix(),
	})
	assertion, err := tok.SignedString([]byte(in.SharedSecret))
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}, "scope": {scope}}
	resp, err := http.PostForm(base+"/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.TokenType != "Bearer" || out.ExpiresIn != 900 {
		t.Fatalf("token grant: %d %s", resp.StatusCode, raw)
	}
	return "Bearer " + out.AccessToken
}
