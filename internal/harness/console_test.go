package harness

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// totp is RFC 6238's code (SHA-1, 30 s, 6 digits) for a base32 secret.
func totp(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(strings.TrimRight(secret, "=")))
	if err != nil {
		t.Fatalf("TOTP secret %q: %v", secret, err)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(at.Unix()/30))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}

var (
	csrfField  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	totpSecret = regexp.MustCompile(`id="totp-secret">([A-Z2-7=]+)<`)
	enrolLink  = regexp.MustCompile(`/console/enrol/[A-Za-z0-9_-]+`)
)

// staffSession adds a staff member with `ferry staff add` (another process),
// enrols them through the enrolment link as a person would (password and the
// authenticator's code) and signs them in; it returns their session cookie
// header and the session's CSRF token.
func staffSession(t *testing.T, env map[string]string, consoleURL, user, role string) (string, string) {
	t.Helper()
	out, stderr, code := runFerry(t, env, "staff", "add", "--user", user, "--role", role)
	link := enrolLink.FindString(out)
	if code != 0 || link == "" {
		t.Fatalf("staff add: exit %d %s %s", code, out, stderr)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string) string {
		resp, err := c.Get(consoleURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	post := func(path string, form url.Values) *http.Response {
		resp, err := c.PostForm(consoleURL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	page := get(link)
	cm, sm := csrfField.FindStringSubmatch(page), totpSecret.FindStringSubmatch(page)
	if cm == nil || sm == nil {
		t.Fatalf("enrolment page: %.500s", page)
	}
	password := "correct horse battery staple 42" // long, and without the user name
	// The previous time step's code enrols; the current one then signs in
	// (a code is good once).
	now := time.Now()
	if resp := post(link, url.Values{"csrf": {cm[1]}, "password": {password}, "password2": {password}, "code": {totp(t, sm[1], now.Add(-30*time.Second))}}); resp.StatusCode >= 400 {
		t.Fatalf("enrol %s: %d", user, resp.StatusCode)
	}
	lm := csrfField.FindStringSubmatch(get("/console/login"))
	if lm == nil {
		t.Fatal("sign-in page without CSRF token")
	}
	if resp := post("/console/login", url.Values{"csrf": {lm[1]}, "username": {user}, "password": {password}, "code": {totp(t, sm[1], now)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in %s: %d", user, resp.StatusCode)
	}
	u, _ := url.Parse(consoleURL)
	var cookies []string
	for _, ck := range jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	om := csrfField.FindStringSubmatch(get("/console/staff"))
	if om == nil {
		om = csrfField.FindStringSubmatch(get("/console/"))
	}
	if om == nil {
		t.Fatalf("no CSRF token for %s's session", user)
	}
	return strings.Join(cookies, "; "), om[1]
}

// signedInConsoleCases are hostile requests of signed-in staff: pages and
// actions their role does not allow (403, recorded), forms without their
// CSRF token (403, recorded), and bad values in forms they may send (400;
// a refused break-glass or staff.add is recorded too).
func signedInConsoleCases(devCookie, devCSRF, adminCookie, adminCSRF, entryID string) []hostile {
	form := func(cookie string) []string {
		return []string{"Content-Type", "application/x-www-form-urlencoded", "Cookie", cookie}
	}
	c := func(name, method, path string, hdr []string, body string, status int, want string, audited int) hostile {
		return hostile{name: "console: " + name, on: "console", method: method, path: path, hdr: hdr, body: body, status: status, want: want, audited: audited}
	}
	dev := []string{"Cookie", devCookie}
	return []hostile{
		c("developer opens Tenants", "GET", "/console/tenants", dev, "", 403, "may not open this page", 1),
		c("developer opens the audit trail", "GET", "/console/audit", dev, "", 403, "may not open this page", 1),
		c("developer adds staff", "POST", "/console/staff", form(devCookie), "csrf="+devCSRF+"&username=eve&role=admin", 403, "may not open this page", 1),
		c("developer disables staff", "POST", "/console/staff/1/disable", form(devCookie), "csrf="+devCSRF, 403, "may not open this page", 1),
		c("developer decrypts without CSRF token", "POST", "/console/reqlog/"+entryID+"/decrypt", form(devCookie), "reason=debugging&ticket=T-1", 403, "did not come from the console", 1),
		c("developer decrypts with another session's token", "POST", "/console/reqlog/"+entryID+"/decrypt", form(devCookie), "csrf="+adminCSRF+"&reason=debugging&ticket=T-1", 403, "did not come from the console", 1),
		c("developer decrypts without a reason", "POST", "/console/reqlog/"+entryID+"/decrypt", form(devCookie), "csrf="+devCSRF+"&reason=&ticket=T-1", 400, "reason", 1),
		c("developer decrypts without a ticket", "POST", "/console/reqlog/"+entryID+"/decrypt", form(devCookie), "csrf="+devCSRF+"&reason=investigating+a+support+case&ticket=", 400, "ticket", 1),
		c("developer decrypts an unknown entry", "POST", "/console/reqlog/"+time.Now().UTC().Format("20060102")+"-00000000000000000000000000000000/decrypt", form(devCookie), "csrf="+devCSRF+"&reason=investigating+a+support+case&ticket=T-1", 404, "", 0),
		c("admin adds staff with an unknown role", "POST", "/console/staff", form(adminCookie), "csrf="+adminCSRF+"&username=eve&role=god", 400, "role", 1),
		c("admin adds staff named by an email address", "POST", "/console/staff", form(adminCookie), "csrf="+adminCSRF+"&username=eve%40example.org&role=support", 400, "email", 1),
		c("admin adds a subcontractor without a contract", "POST", "/console/staff", form(adminCookie), "csrf="+adminCSRF+"&username=sub1&role=developer&subcontractor=on", 400, "", 1),
		c("admin disables an unknown account", "POST", "/console/staff/999999/disable", form(adminCookie), "csrf="+adminCSRF, 404, "", 0),
		c("admin form without CSRF token", "POST", "/console/staff", form(adminCookie), "username=eve&role=support", 403, "did not come from the console", 1),
	}
}
