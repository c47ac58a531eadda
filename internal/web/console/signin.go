package console

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"image/png"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pquerna/otp"

	"ferry/internal/apperr"
	"ferry/internal/staff"
)

// Sign-in attempts per client address before 429: the account lockout
// (staff.MaxFailures) protects one account; this slows guessing across many.
const (
	loginAttempts = 10
	loginWindow   = 5 * time.Minute
)

// limiter counts attempts per key in fixed windows.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	seen   map[string]*bucket
}

type bucket struct {
	start time.Time
	n     int
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, seen: map[string]*bucket{}}
}

// allow counts one attempt by key at now; when over the limit it returns
// how long until the window ends.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) > 10000 { // bounded memory: forget finished windows
		for k, b := range l.seen {
			if now.Sub(b.start) >= l.window {
				delete(l.seen, k)
			}
		}
	}
	b := l.seen[key]
	if b == nil || now.Sub(b.start) >= l.window {
		b = &bucket{start: now}
		l.seen[key] = b
	}
	b.n++
	if b.n > l.max {
		return false, b.start.Add(l.window).Sub(now)
	}
	return true, 0
}

func clientAddr(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

type publicRoute struct {
	route string
	h     http.Handler
}

func (c *Console) publicHandlers() []publicRoute {
	return []publicRoute{
		{"GET /console/login", http.HandlerFunc(c.handleLoginForm)},
		{"POST /console/login", http.HandlerFunc(c.handleLogin)},
		{"GET /console/enrol/{token}", http.HandlerFunc(c.handleEnrolForm)},
		{"POST /console/enrol/{token}", http.HandlerFunc(c.handleEnrol)},
		{"GET /console/sso", http.HandlerFunc(c.handleSSOStart)},
		{"GET /console/sso/callback", http.HandlerFunc(c.handleSSOCallback)},
		{"GET /console/static/{file}", handleStatic()},
	}
}

func (c *Console) initPublic() {
	for _, rt := range c.publicHandlers() {
		c.public = append(c.public, rt.route)
	}
}

// visitor returns the pre-sign-in session of the request, making one (and
// setting its cookie) if there is none. Its CSRF token guards the sign-in
// and enrolment forms.
func (c *Console) visitor(w http.ResponseWriter, r *http.Request) (staff.Session, error) {
	if v, err := c.d.Staff.Visitor(r.Context(), cookie(r, c.sessionCookie())); err == nil {
		return v, nil
	}
	v, err := c.d.Staff.NewVisitor(r.Context())
	if err != nil {
		return v, err
	}
	c.setCookie(w, c.sessionCookie(), v.Token, 0, http.SameSiteStrictMode)
	return v, nil
}

// checkVisitorCSRF refuses a pre-sign-in form without the visitor's token.
func (c *Console) checkVisitorCSRF(w http.ResponseWriter, r *http.Request, action string) (staff.Session, bool) {
	v, err := c.d.Staff.Visitor(r.Context(), cookie(r, c.sessionCookie()))
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(v.CSRF)) != 1 || v.CSRF == "" {
		c.refuse(r.Context(), staff.Actor{Name: "anonymous"}, "console.csrf", action, "form without a valid CSRF token")
		c.errorPage(w, r, nil, apperr.New(apperr.EFORBIDDEN, "this form has expired or did not come from the console; reload the page and try again"))
		return v, false
	}
	return v, true
}

var loginTmpl = page("login.html")

type loginData struct {
	Next    string
	SSO     bool
	Message string
	User    string
}

func (c *Console) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if _, err := c.d.Staff.Authenticate(r.Context(), cookie(r, c.sessionCookie())); err == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	v, err := c.visitor(w, r)
	if err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	c.render(w, loginTmpl, http.StatusOK, view{Title: "Sign in", CSRF: v.CSRF, Now: c.d.Staff.Now(),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next")), SSO: c.d.SSO != nil}})
}

// handleLogin signs in with user name, password and TOTP code. The new
// session never reuses the visitor's id: whatever cookie came with the form
// (one planted by someone else included) is deleted.
func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, wait := c.limiter.allow(clientAddr(r), time.Now()); !ok {
		c.refuse(ctx, staff.Actor{Name: "anonymous"}, "staff.signin", "", "rate limited: too many sign-in attempts from one address")
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		c.errorPage(w, r, nil, apperr.New(apperr.ERATELIMIT, "too many sign-in attempts; wait %d seconds", int(wait.Seconds())+1))
		return
	}
	v, ok := c.checkVisitorCSRF(w, r, "POST /console/login")
	if !ok {
		return
	}
	user := r.PostFormValue("username")
	ss, err := c.d.Staff.SignIn(ctx, user, r.PostFormValue("password"), r.PostFormValue("code"))
	if err != nil {
		status := apperr.Status(apperr.CodeOf(err))
		c.render(w, loginTmpl, status, view{Title: "Sign in", CSRF: v.CSRF, Now: c.d.Staff.Now(),
			Data: loginData{Next: safeNext(r.PostFormValue("next")), SSO: c.d.SSO != nil, Message: apperr.ProblemOf(err).Detail, User: user}})
		return
	}
	c.d.Staff.SignOut(ctx, v.Token)
	c.setCookie(w, c.sessionCookie(), ss.Token, 0, http.SameSiteStrictMode)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (c *Console) handleLogout(w http.ResponseWriter, r *http.Request, p staff.Principal) {
	c.d.Staff.SignOut(r.Context(), cookie(r, c.sessionCookie()))
	c.d.Audit.Record(r.Context(), auditEvent(p, "staff.signout", "Staff accounts", p.Username))
	c.clearCookie(w, c.sessionCookie())
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

var enrolTmpl = page("enrol.html")

type enrolData struct {
	Account staff.Account
	Secret  string
	URL     string
	QR      template.URL // data: URL of a PNG, made here
	SSO     bool
	Message string
	Field   string
	Done    bool
	Token   string // the enrolment token, for the single sign-on link
}

func qrDataURL(otpURL string) string {
	k, err := otp.NewKeyFromURL(otpURL)
	if err != nil {
		return ""
	}
	img, err := k.Image(200, 200)
	if err != nil {
		return ""
	}
	var buf bytes.Buffer
	if png.Encode(&buf, img) != nil {
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

func (c *Console) handleEnrolForm(w http.ResponseWriter, r *http.Request) {
	en, err := c.d.Staff.OpenEnrolment(r.Context(), r.PathValue("token"))
	if err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	v, err := c.visitor(w, r)
	if err != nil {
		c.errorPage(w, r, nil, err)
		return
	}
	c.render(w, enrolTmpl, http.StatusOK, view{Title: "Enrol", CSRF: v.CSRF, Now: c.d.Staff.Now(),
		Data: enrolData{Account: en.Account, Secret: en.TOTPSecret, URL: en.TOTPURL, QR: template.URL(qrDataURL(en.TOTPURL)), SSO: c.d.SSO != nil, Token: r.PathValue("token")}})
}

func (c *Console) handleEnrol(w http.ResponseWriter, r *http.Request) {
	v, ok := c.checkVisitorCSRF(w, r, "POST /console/enrol")
	if !ok {
		return
	}
	tok := r.PathValue("token")
	if r.PostFormValue("password") != r.PostFormValue("password2") {
		c.enrolAgain(w, r, v, tok, apperr.Invalid("password2", "the two passwords differ"))
		return
	}
	a, err := c.d.Staff.CompleteEnrolment(r.Context(), tok, r.PostFormValue("password"), r.PostFormValue("code"))
	if err != nil {
		c.enrolAgain(w, r, v, tok, err)
		return
	}
	c.render(w, enrolTmpl, http.StatusOK, view{Title: "Enrolled", Now: c.d.Staff.Now(), Data: enrolData{Account: a, Done: true}})
}

func (c *Console) enrolAgain(w http.ResponseWriter, r *http.Request, v staff.Session, tok string, err error) {
	en, oerr := c.d.Staff.OpenEnrolment(r.Context(), tok)
	if oerr != nil {
		c.errorPage(w, r, nil, oerr)
		return
	}
	var ae *apperr.Error
	d := enrolData{Account: en.Account, Secret: en.TOTPSecret, URL: en.TOTPURL, QR: template.URL(qrDataURL(en.TOTPURL)), SSO: c.d.SSO != nil, Token: tok,
		Message: apperr.ProblemOf(err).Detail}
	if errors.As(err, &ae) {
		d.Field = ae.Field
	}
	c.render(w, enrolTmpl, apperr.Status(apperr.CodeOf(err)), view{Title: "Enrol", CSRF: v.CSRF, Now: c.d.Staff.Now(), Data: d})
}
