package jirasim

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestWrongOrMissingAuthGets401InJiraShape(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Users: 12, Seed: 4})
	app := newTestApp(t, srv.URL, "auth-app")
	in := app.install(s)
	u := s.Users()[2]
	var closed User
	for _, c := range s.Users() {
		if c.Closed {
			closed = c
		}
	}
	path := "/rest/api/3/myself"
	badQSH := appJWT(t, in, "GET", "/rest/api/3/field")
	noneTok := "JWT " + b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString([]byte(`{"iss":"auth-app","qsh":"x","exp":9999999999,"iat":1}`)) + "."
	other := in
	other.SharedSecret = "not-the-secret"
	cases := map[string]string{
		"none":           "",
		"wrong token":    "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Email+":nope")),
		"unknown email":  "Basic " + base64.StdEncoding.EncodeToString([]byte("ghost@example.com:"+u.APIToken)),
		"closed account": basicAuth(closed),
		"garbage basic":  "Basic !!!",
		"jwt wrong qsh":  badQSH,
		"jwt alg none":   noneTok,
		"jwt bad secret": appJWT(t, other, "GET", path),
		"unknown bearer": "Bearer simat_nope",
		"other scheme":   "Digest x",
	}
	for name, auth := range cases {
		r := call(t, srv.URL, "GET", path, auth, nil)
		if r.resp.StatusCode != 401 {
			t.Errorf("%s: status %d", name, r.resp.StatusCode)
			continue
		}
		var e errorCollection
		if err := json.Unmarshal(r.body, &e); err != nil || len(e.ErrorMessages) == 0 || e.ErrorMessages[0] != notAuthenticated || e.Errors == nil {
			t.Errorf("%s: body %s", name, r.body)
		}
	}
	call(t, srv.URL, "GET", path, basicAuth(u), nil).status(t, 200)
	// A JWT may also ride in the query string.
	q := path + "?expand=groups"
	tok := strings.TrimPrefix(appJWT(t, in, "GET", q), "JWT ")
	call(t, srv.URL, "GET", q+"&jwt="+tok, "", nil).status(t, 200)
}

func TestAppJWTExpiresAndDisabledAppsAreRefused(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Seed: 4})
	app := newTestApp(t, srv.URL, "exp-app")
	in := app.install(s)
	path := "/rest/api/3/field"
	auth := appJWT(t, in, "GET", path) // exp = now + 3 min
	call(t, srv.URL, "GET", path, auth, nil).status(t, 200)
	clock := &fakeClock{t: time.Now().Add(4 * time.Minute)}
	s.setClock(clock.now)
	call(t, srv.URL, "GET", path, auth, nil).status(t, 401)
	s.setClock(time.Now)
	if err := s.Disable(t.Context(), in.AddonKey); err != nil {
		t.Fatal(err)
	}
	if ev := app.lastEvent(); ev.Event != "disabled" || ev.Err != "" {
		t.Errorf("disabled callback: %+v", ev)
	}
	call(t, srv.URL, "GET", path, appJWT(t, in, "GET", path), nil).status(t, 401)
	if err := s.Enable(t.Context(), in.AddonKey); err != nil {
		t.Fatal(err)
	}
	call(t, srv.URL, "GET", path, appJWT(t, in, "GET", path), nil).status(t, 200)
}

func TestOAuthBearerActsAsUser(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 50, Projects: 3, Users: 5, Seed: 8})
	app := newTestApp(t, srv.URL, "oauth-app")
	in := app.install(s)
	restricted := s.Users()[1]
	tok := bearerFor(t, srv.URL, in, restricted.AccountID, "READ ACT_AS_USER")
	var me userJSON
	call(t, srv.URL, "GET", "/rest/api/3/myself", tok, nil).status(t, 200).decode(t, &me)
	if me.AccountID != restricted.AccountID {
		t.Errorf("myself as %s", me.AccountID)
	}
	// READ cannot write; WRITE can.
	create := map[string]any{"fields": map[string]any{"project": map[string]string{"key": restricted.Projects[0]}, "summary": "x", "issuetype": map[string]string{"name": "Task"}}}
	call(t, srv.URL, "POST", "/rest/api/3/issue", tok, create).status(t, 403)
	call(t, srv.URL, "POST", "/rest/api/3/issue", bearerFor(t, srv.URL, in, restricted.AccountID, "WRITE ACT_AS_USER"), create).status(t, 201)
	// Tokens live 900 s.
	clock := &fakeClock{t: time.Now().Add(901 * time.Second)}
	s.setClock(clock.now)
	call(t, srv.URL, "GET", "/rest/api/3/myself", tok, nil).status(t, 401)
	s.setClock(time.Now)

	grant := func(mod func(jwt.MapClaims), secret, scope string) (int, string) {
		now := time.Now()
		c := jwt.MapClaims{
			"iss": clientIDPrefix + in.OAuthClientID, "sub": accountIDPrefix + restricted.AccountID, "tnt": in.BaseURL,
			"aud": oauthAudience, "iat": now.Unix(), "exp": now.Add(30 * time.Second).Unix(),
		}
		mod(c)
		a, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
		resp, err := http.PostForm(srv.URL+"/oauth2/token", url.Values{"grant_type": {jwtBearerGrant}, "assertion": {a}, "scope": {scope}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	keep := func(jwt.MapClaims) {}
	if st, _ := grant(keep, in.SharedSecret, "READ ACT_AS_USER"); st != 200 {
		t.Fatalf("valid grant: %d", st)
	}
	bad := map[string]struct {
		mod    func(jwt.MapClaims)
		secret string
		scope  string
		status int
	}{
		"wrong secret":       {keep, "nope", "READ", 400},
		"exp too far":        {func(c jwt.MapClaims) { c["exp"] = time.Now().Add(10 * time.Minute).Unix() }, in.SharedSecret, "READ", 400},
		"expired":            {func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Second).Unix() }, in.SharedSecret, "READ", 400},
		"wrong tnt":          {func(c jwt.MapClaims) { c["tnt"] = "https://other.atlassian.net" }, in.SharedSecret, "READ", 400},
		"wrong aud":          {func(c jwt.MapClaims) { c["aud"] = "https://api.atlassian.com" }, in.SharedSecret, "READ", 400},
		"unknown client":     {func(c jwt.MapClaims) { c["iss"] = clientIDPrefix + "nope" }, in.SharedSecret, "READ", 401},
		"unknown user":       {func(c jwt.MapClaims) { c["sub"] = accountIDPrefix + "nobody" }, in.SharedSecret, "READ", 400},
		"undeclared scope":   {keep, in.SharedSecret, "READ ADMIN", 400},
		"no scope":           {keep, in.SharedSecret, "", 400},
		"sub without prefix": {func(c jwt.MapClaims) { c["sub"] = restricted.AccountID }, in.SharedSecret, "READ", 400},
	}
	for name, b := range bad {
		if st, code := grant(b.mod, b.secret, b.scope); st != b.status {
			t.Errorf("%s: status %d (%s), want %d", name, st, code, b.status)
		}
	}
	resp, _ := http.PostForm(srv.URL+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
	if resp.StatusCode != 400 {
		t.Errorf("other grant types: %d", resp.StatusCode)
	}
	resp.Body.Close()
}
