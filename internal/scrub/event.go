package scrub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hasher turns a value into a keyed pseudonym within a scope: a tenant id,
// or "" for Ferry-wide. Equal inputs give equal pseudonyms; nobody without
// the key can compute or reverse them.
type Hasher interface {
	Pseudonym(scope, value string) string
}

// EventOptions configures Event and Session.
type EventOptions struct {
	// Hasher computes the pseudonym kept of the user block and of a
	// session's did; nil removes both.
	Hasher Hasher
	// TenantTag names the tag that says which tenant an event came from (the
	// app's pages set it); it scopes the user pseudonym and is never kept.
	TenantTag string
	// ValidTenant reports whether a tag value is a tenant id; other values
	// scope nothing (the pseudonym is then Ferry-wide).
	ValidTenant func(string) bool
}

// ErrNotObject: the payload is not a JSON object.
var ErrNotObject = errors.New("not a JSON object")

// SentryEvent is a Sentry error event reduced to what the statement allows:
// what went wrong (type, scrubbed message, stack frames), where (browser,
// OS, runtime, app version, release, environment) and a pseudonym for who.
// Every field a Sentry event may carry and this struct does not name is
// dropped when the payload is decoded (rule unlisted-fields).
type SentryEvent struct {
	EventID     string              `json:"event_id"`
	Timestamp   json.RawMessage     `json:"timestamp,omitempty"`
	Platform    string              `json:"platform,omitempty"`
	Level       string              `json:"level,omitempty"`
	Logger      string              `json:"logger,omitempty"`
	Transaction string              `json:"transaction,omitempty"`
	Release     string              `json:"release,omitempty"`
	Dist        string              `json:"dist,omitempty"`
	Environment string              `json:"environment,omitempty"`
	Message     string              `json:"message,omitempty"`
	Exception   *values[exception]  `json:"exception,omitempty"`
	Threads     *values[thread]     `json:"threads,omitempty"`
	Breadcrumbs *values[breadcrumb] `json:"breadcrumbs,omitempty"`
	Contexts    *Contexts           `json:"contexts,omitempty"`
	Tags        map[string]string   `json:"tags,omitempty"`
	User        *user               `json:"user,omitempty"`
	Request     *request            `json:"request,omitempty"`
	SDK         *sdk                `json:"sdk,omitempty"`
	Fingerprint []string            `json:"fingerprint,omitempty"`
}

// Title is what a list of events shows: "Type: message" of the last
// exception, or the message.
func (e *SentryEvent) Title() string {
	if e.Exception != nil && len(e.Exception.Values) > 0 {
		x := e.Exception.Values[len(e.Exception.Values)-1]
		switch {
		case x.Type != "" && x.Value != "":
			return x.Type + ": " + x.Value
		case x.Type != "":
			return x.Type
		default:
			return x.Value
		}
	}
	return e.Message
}

// Browser is "name version" of the browser context, or "".
func (e *SentryEvent) Browser() string {
	if e.Contexts == nil || e.Contexts.Browser == nil {
		return ""
	}
	return strings.TrimSpace(string(e.Contexts.Browser.Name + " " + e.Contexts.Browser.Version))
}

// OS is "name version" of the os context, or "".
func (e *SentryEvent) OS() string {
	if e.Contexts == nil || e.Contexts.OS == nil {
		return ""
	}
	return strings.TrimSpace(string(e.Contexts.OS.Name + " " + e.Contexts.OS.Version))
}

// values is Sentry's {"values": [...]} wrapper; a bare array is accepted too.
type values[T any] struct {
	Values []T `json:"values"`
}

func (v *values[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, &v.Values)
	}
	var w struct {
		Values []T `json:"values"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v.Values = w.Values
	return nil
}

type exception struct {
	Type       string      `json:"type,omitempty"`
	Value      string      `json:"value,omitempty"`
	Module     string      `json:"module,omitempty"`
	ThreadID   flexString  `json:"thread_id,omitempty"`
	Mechanism  *mechanism  `json:"mechanism,omitempty"`
	Stacktrace *stacktrace `json:"stacktrace,omitempty"`
}

type mechanism struct {
	Type      string `json:"type,omitempty"`
	Handled   *bool  `json:"handled,omitempty"`
	Synthetic *bool  `json:"synthetic,omitempty"`
}

type stacktrace struct {
	Frames []frame `json:"frames"`
}

type frame struct {
	Filename    string   `json:"filename,omitempty"`
	AbsPath     string   `json:"abs_path,omitempty"`
	Function    string   `json:"function,omitempty"`
	Module      string   `json:"module,omitempty"`
	Package     string   `json:"package,omitempty"`
	Lineno      *int     `json:"lineno,omitempty"`
	Colno       *int     `json:"colno,omitempty"`
	InApp       *bool    `json:"in_app,omitempty"`
	ContextLine string   `json:"context_line,omitempty"`
	PreContext  []string `json:"pre_context,omitempty"`
	PostContext []string `json:"post_context,omitempty"`
	Platform    string   `json:"platform,omitempty"`
}

type thread struct {
	ID         flexString  `json:"id,omitempty"`
	Name       string      `json:"name,omitempty"`
	Crashed    *bool       `json:"crashed,omitempty"`
	Current    *bool       `json:"current,omitempty"`
	Main       *bool       `json:"main,omitempty"`
	Stacktrace *stacktrace `json:"stacktrace,omitempty"`
}

type breadcrumb struct {
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
	Type      string          `json:"type,omitempty"`
	Category  string          `json:"category,omitempty"`
	Level     string          `json:"level,omitempty"`
	// message and data are not fields: rule breadcrumb-message.
}

// Contexts keeps the environment the statement names: browser, operating
// system, runtime, app version, device family.
type Contexts struct {
	Browser *nameVersion `json:"browser,omitempty"`
	OS      *osContext   `json:"os,omitempty"`
	Runtime *nameVersion `json:"runtime,omitempty"`
	App     *appContext  `json:"app,omitempty"`
	Device  *device      `json:"device,omitempty"`
}

type nameVersion struct {
	Type    string     `json:"type,omitempty"`
	Name    flexString `json:"name,omitempty"`
	Version flexString `json:"version,omitempty"`
}

type osContext struct {
	Type    string     `json:"type,omitempty"`
	Name    flexString `json:"name,omitempty"`
	Version flexString `json:"version,omitempty"`
	Build   flexString `json:"build,omitempty"`
}

type appContext struct {
	Type       string     `json:"type,omitempty"`
	AppName    flexString `json:"app_name,omitempty"`
	AppVersion flexString `json:"app_version,omitempty"`
	AppBuild   flexString `json:"app_build,omitempty"`
}

type device struct {
	Type   string     `json:"type,omitempty"`
	Family flexString `json:"family,omitempty"`
	Model  flexString `json:"model,omitempty"`
	Arch   flexString `json:"arch,omitempty"`
}

type user struct {
	ID string `json:"id"`
}

type request struct {
	URL    string `json:"url,omitempty"`
	Method string `json:"method,omitempty"`
}

type sdk struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// flexString accepts a JSON string, number or boolean (SDKs differ).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*f = ""
	case b[0] == '"':
		*f = flexString(jsonString(b))
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("want a string or number, not %s", kindOf(b[0]))
	default:
		*f = flexString(b)
	}
	return nil
}

// jsonString decodes a JSON string token the decoder has already checked:
// without escapes its text is the string itself.
func jsonString(b []byte) string {
	simple := len(b) >= 2 && b[len(b)-1] == '"'
	for i := 1; simple && i < len(b)-1; i++ {
		if b[i] == '\\' || b[i] < 0x20 || b[i] >= 0x80 {
			simple = false
		}
	}
	if simple {
		return string(b[1 : len(b)-1])
	}
	var s string
	json.Unmarshal(b, &s)
	return s
}

func kindOf(c byte) string {
	if c == '{' {
		return "an object"
	}
	return "an array"
}

// incoming is the wire form: the fields whose shape varies between SDKs
// are decoded by hand.
type incoming struct {
	EventID     string                     `json:"event_id"`
	Timestamp   json.RawMessage            `json:"timestamp"`
	Platform    string                     `json:"platform"`
	Level       string                     `json:"level"`
	Logger      string                     `json:"logger"`
	Transaction string                     `json:"transaction"`
	Release     flexString                 `json:"release"`
	Dist        flexString                 `json:"dist"`
	Environment flexString                 `json:"environment"`
	Message     json.RawMessage            `json:"message"`
	LogEntry    *logEntry                  `json:"logentry"`
	Exception   *values[exception]         `json:"exception"`
	Threads     *values[thread]            `json:"threads"`
	Breadcrumbs *values[breadcrumb]        `json:"breadcrumbs"`
	Contexts    map[string]json.RawMessage `json:"contexts"`
	Tags        json.RawMessage            `json:"tags"`
	User        json.RawMessage            `json:"user"`
	Request     *incomingRequest           `json:"request"`
	SDK         *sdk                       `json:"sdk"`
	Fingerprint []flexString               `json:"fingerprint"`
}

type logEntry struct {
	Message   string `json:"message"`
	Formatted string `json:"formatted"`
}

type incomingRequest struct {
	URL     string          `json:"url"`
	Method  string          `json:"method"`
	Headers json.RawMessage `json:"headers"`
}

var levels = map[string]bool{"fatal": true, "error": true, "warning": true, "info": true, "debug": true}

// FieldError names the part of an event that could not be read.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Event decodes a Sentry event payload, keeps only what the statement
// allows and scrubs every kept string. It fails only on input that is not
// an event (not a JSON object, a field of the wrong shape, a malformed
// event_id); the error names the field.
func Event(raw []byte, o EventOptions) (*SentryEvent, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &FieldError{Field: "event", Reason: ErrNotObject.Error()}
	}
	var in incoming
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, decodeError("event", err)
	}
	p := Events
	m := memo{}
	out := &SentryEvent{}
	id, err := EventID(in.EventID)
	if err != nil {
		return nil, err
	}
	out.EventID = id
	out.Timestamp = cleanTimestamp(in.Timestamp)
	out.Platform = cleanWord(in.Platform)
	if lv := strings.ToLower(in.Level); levels[lv] {
		out.Level = lv
	} else if in.Level == "warn" {
		out.Level = "warning"
	} else {
		out.Level = "error"
	}
	out.Logger = p.Text(in.Logger)
	out.Transaction = p.Text(in.Transaction)
	out.Release = identifier(string(in.Release))
	out.Dist = identifier(string(in.Dist))
	out.Environment = identifier(string(in.Environment))

	msg, err := messageText(in.Message)
	if err != nil {
		return nil, err
	}
	if in.LogEntry != nil {
		if in.LogEntry.Formatted != "" {
			msg = in.LogEntry.Formatted
		} else if msg == "" {
			msg = in.LogEntry.Message
		}
	}
	out.Message = p.Text(msg)

	if in.Exception != nil {
		for _, x := range in.Exception.Values {
			x.Type = p.Text(x.Type)
			x.Value = p.Text(x.Value)
			x.Module = p.Text(x.Module)
			x.ThreadID = flexString(cleanWord(string(x.ThreadID)))
			if x.Mechanism != nil {
				x.Mechanism.Type = cleanWord(x.Mechanism.Type)
			}
			x.Stacktrace = scrubStack(x.Stacktrace, m)
			if out.Exception == nil {
				out.Exception = &values[exception]{}
			}
			out.Exception.Values = append(out.Exception.Values, x)
		}
	}
	if in.Threads != nil {
		for _, t := range in.Threads.Values {
			t.ID = flexString(cleanWord(string(t.ID)))
			t.Name = p.Text(t.Name)
			t.Stacktrace = scrubStack(t.Stacktrace, m)
			if out.Threads == nil {
				out.Threads = &values[thread]{}
			}
			out.Threads.Values = append(out.Threads.Values, t)
		}
	}
	if in.Breadcrumbs != nil {
		for _, b := range in.Breadcrumbs.Values {
			b.Timestamp = cleanTimestamp(b.Timestamp)
			b.Type = cleanWord(b.Type)
			b.Category = m.text(b.Category)
			b.Level = cleanWord(b.Level)
			if out.Breadcrumbs == nil {
				out.Breadcrumbs = &values[breadcrumb]{}
			}
			out.Breadcrumbs.Values = append(out.Breadcrumbs.Values, b)
		}
	}

	tags, err := decodeTags(in.Tags)
	if err != nil {
		return nil, err
	}
	scope := ""
	if o.TenantTag != "" {
		if t, ok := tags[o.TenantTag]; ok && o.ValidTenant != nil && o.ValidTenant(t) {
			scope = t
		}
		delete(tags, o.TenantTag)
	}
	for k, v := range tags {
		if p.SecretKey(k) {
			continue
		}
		if out.Tags == nil {
			out.Tags = map[string]string{}
		}
		out.Tags[p.Text(k)] = p.Text(v)
	}

	ctx, err := decodeContexts(in.Contexts)
	if err != nil {
		return nil, err
	}
	var ua string
	if in.Request != nil {
		ua, err = userAgent(in.Request.Headers)
		if err != nil {
			return nil, err
		}
		r := &request{URL: p.Text(stripURL(in.Request.URL)), Method: cleanWord(strings.ToUpper(in.Request.Method))}
		if r.URL != "" || r.Method != "" {
			out.Request = r
		}
	}
	if ua != "" {
		b, osc := ParseUserAgent(ua)
		if ctx.Browser == nil && b.Name != "" {
			ctx.Browser = &nameVersion{Type: "browser", Name: flexString(b.Name), Version: flexString(b.Version)}
		}
		if ctx.OS == nil && osc.Name != "" {
			ctx.OS = &osContext{Type: "os", Name: flexString(osc.Name), Version: flexString(osc.Version)}
		}
	}
	if ctx.Browser != nil || ctx.OS != nil || ctx.Runtime != nil || ctx.App != nil || ctx.Device != nil {
		out.Contexts = ctx
	}

	if id, err := userIdentity(in.User); err != nil {
		return nil, err
	} else if id != "" && o.Hasher != nil {
		out.User = &user{ID: o.Hasher.Pseudonym(scope, id)}
	}
	if in.SDK != nil {
		out.SDK = &sdk{Name: cleanWord(in.SDK.Name), Version: cleanWord(in.SDK.Version)}
	}
	for _, f := range in.Fingerprint {
		out.Fingerprint = append(out.Fingerprint, p.Text(string(f)))
	}
	return out, nil
}

func decodeError(where string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			f = where
		}
		return &FieldError{Field: f, Reason: "cannot be a JSON " + te.Value}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &FieldError{Field: where, Reason: fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	}
	return &FieldError{Field: where, Reason: err.Error()}
}

// EventID normalises an event id to 32 lower-case hex digits (dashes of a
// UUID dropped). An empty id stays empty: the caller assigns one.
func EventID(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	id := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(id) != 32 {
		return "", &FieldError{Field: "event_id", Reason: "must be 32 hexadecimal digits"}
	}
	for i := 0; i < len(id); i++ {
		if !isDigit(id[i]) && (id[i] < 'a' || id[i] > 'f') {
			return "", &FieldError{Field: "event_id", Reason: "must be 32 hexadecimal digits"}
		}
	}
	return id, nil
}

// memo remembers Text results within one event: the frames of a stack
// mostly share a handful of file names and modules.
type memo map[string]string

func (m memo) text(s string) string {
	if s == "" {
		return s
	}
	if out, ok := m[s]; ok {
		return out
	}
	out := Events.Text(s)
	m[s] = out
	return out
}

func scrubStack(st *stacktrace, m memo) *stacktrace {
	if st == nil {
		return nil
	}
	for i := range st.Frames {
		f := &st.Frames[i]
		f.Filename = m.text(f.Filename)
		f.AbsPath = m.text(f.AbsPath)
		f.Function = m.text(f.Function)
		f.Module = m.text(f.Module)
		f.Package = m.text(f.Package)
		f.ContextLine = m.text(f.ContextLine)
		for j := range f.PreContext {
			f.PreContext[j] = m.text(f.PreContext[j])
		}
		for j := range f.PostContext {
			f.PostContext[j] = m.text(f.PostContext[j])
		}
		f.Platform = cleanWord(f.Platform)
	}
	return st
}

// messageText reads "message" as a string or as {message, formatted}.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", decodeError("message", err)
		}
		return s, nil
	}
	var le logEntry
	if err := json.Unmarshal(raw, &le); err != nil {
		return "", decodeError("message", err)
	}
	if le.Formatted != "" {
		return le.Formatted, nil
	}
	return le.Message, nil
}

// decodeTags reads tags as an object or as a list of [key, value] pairs.
func decodeTags(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	out := map[string]string{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	if raw[0] == '[' {
		var pairs [][]flexString
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return nil, decodeError("tags", err)
		}
		for _, p := range pairs {
			if len(p) == 2 {
				out[string(p[0])] = string(p[1])
			}
		}
		return out, nil
	}
	var m map[string]flexString
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, decodeError("tags", err)
	}
	for k, v := range m {
		out[k] = string(v)
	}
	return out, nil
}

// decodeContexts keeps the known environment contexts; all others
// (trace, culture, response, state, custom ones) are dropped.
func decodeContexts(m map[string]json.RawMessage) (*Contexts, error) {
	c := &Contexts{}
	dec := func(key string, dst any) error {
		raw, ok := m[key]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return decodeError("contexts."+key, err)
		}
		return nil
	}
	var b, rt nameVersion
	var osc osContext
	var app appContext
	var dev device
	for _, d := range []struct {
		key string
		dst any
	}{{"browser", &b}, {"os", &osc}, {"runtime", &rt}, {"app", &app}, {"device", &dev}} {
		if err := dec(d.key, d.dst); err != nil {
			return nil, err
		}
	}
	if b.Name != "" {
		c.Browser = &nameVersion{Type: "browser", Name: envValue(b.Name), Version: envValue(b.Version)}
	}
	if osc.Name != "" {
		c.OS = &osContext{Type: "os", Name: envValue(osc.Name), Version: envValue(osc.Version), Build: envValue(osc.Build)}
	}
	if rt.Name != "" {
		c.Runtime = &nameVersion{Type: "runtime", Name: envValue(rt.Name), Version: envValue(rt.Version)}
	}
	if app.AppVersion != "" || app.AppName != "" || app.AppBuild != "" {
		c.App = &appContext{Type: "app", AppName: envValue(app.AppName), AppVersion: envValue(app.AppVersion), AppBuild: envValue(app.AppBuild)}
	}
	if dev.Family != "" || dev.Model != "" || dev.Arch != "" {
		c.Device = &device{Type: "device", Family: envValue(dev.Family), Model: envValue(dev.Model), Arch: envValue(dev.Arch)}
	}
	return c, nil
}

// envValue keeps a browser, OS or runtime name or version: short, printable,
// and without anything an identifier rule finds (an email in an OS build).
// Version numbers are not run through the IP rule: 120.0.0.0 is Chrome's.
func envValue(s flexString) flexString {
	v := strings.TrimSpace(string(s))
	if len(v) > 100 {
		v = v[:100]
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return ""
		}
	}
	return flexString(identifierText(v))
}

// identifier keeps a release, dist or environment name: these are set by
// the app's build, not by users, so only the identifier rules (email, JWT,
// token, accountId) apply — a release "1.0.0.1" is not an IP address.
func identifier(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return identifierText(s)
}

var identifierRules = []string{"url-userinfo", "jwt", "bearer", "ferry-token", "secret-pair", "email", "atlassian-account-id"}

func identifierText(s string) string {
	f := features(s)
	if !f.any() {
		return s
	}
	for _, name := range identifierRules {
		r := mustRule(name)
		if r.text.hint(s, &f) {
			s = Events.ApplyRule(r, s)
			f = features(s)
		}
	}
	return s
}

// cleanWord keeps short machine words (platform, level, mechanism type,
// SDK name and version, thread id) and drops anything else.
func cleanWord(s string) string {
	if len(s) > 128 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && strings.IndexByte("._-+/:@ ", c) < 0 {
			return ""
		}
	}
	return identifierText(s)
}

// cleanTimestamp keeps a number of seconds or an RFC 3339 time.
func cleanTimestamp(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if _, err := time.Parse(layout, s); err == nil {
				return raw
			}
		}
		return nil
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err == nil {
		return raw
	}
	return nil
}

// stripURL removes user info, query and fragment from a URL (rules
// url-userinfo and url-query), also when it is relative.
func stripURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			if slash := strings.IndexByte(rest, '/'); slash < 0 || at < slash {
				u = u[:i+3] + rest[at+1:]
			}
		}
	}
	return u
}

// userAgent finds the User-Agent in request headers given as an object or
// as a list of [name, value] pairs.
func userAgent(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '[' {
		var pairs [][]flexString
		if err := json.Unmarshal(raw, &pairs); err != nil {
			return "", decodeError("request.headers", err)
		}
		for _, p := range pairs {
			if len(p) == 2 && strings.EqualFold(string(p[0]), "User-Agent") {
				return string(p[1]), nil
			}
		}
		return "", nil
	}
	var m map[string]flexString
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", decodeError("request.headers", err)
	}
	for k, v := range m {
		if strings.EqualFold(k, "User-Agent") {
			return string(v), nil
		}
	}
	return "", nil
}

// userIdentity is what the user block says about who: its id, email or
// username, in that order (an IP address alone is not a person's identity
// and is dropped).
func userIdentity(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var u struct {
		ID       flexString `json:"id"`
		Email    flexString `json:"email"`
		Username flexString `json:"username"`
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return "", decodeError("user", err)
	}
	for _, v := range []flexString{u.ID, u.Email, u.Username} {
		if s := strings.TrimSpace(string(v)); s != "" {
			return s, nil
		}
	}
	return "", nil
}

// SentrySession is a release-health session update or aggregate, reduced to
// what counting crash-free sessions needs.
type SentrySession struct {
	SID        string          `json:"sid,omitempty"`
	DID        string          `json:"did,omitempty"`
	Init       *bool           `json:"init,omitempty"`
	Started    json.RawMessage `json:"started,omitempty"`
	Timestamp  json.RawMessage `json:"timestamp,omitempty"`
	Seq        *int64          `json:"seq,omitempty"`
	Duration   *float64        `json:"duration,omitempty"`
	Status     string          `json:"status,omitempty"`
	Errors     *int64          `json:"errors,omitempty"`
	Attrs      *sessionAttrs   `json:"attrs,omitempty"`
	Aggregates []aggregate     `json:"aggregates,omitempty"`
}

type sessionAttrs struct {
	Release     string `json:"release,omitempty"`
	Environment string `json:"environment,omitempty"`
	// ip_address and user_agent are not fields: rule unlisted-fields.
}

type aggregate struct {
	Started  json.RawMessage `json:"started,omitempty"`
	DID      string          `json:"did,omitempty"`
	Exited   *int64          `json:"exited,omitempty"`
	Errored  *int64          `json:"errored,omitempty"`
	Abnormal *int64          `json:"abnormal,omitempty"`
	Crashed  *int64          `json:"crashed,omitempty"`
}

// Session scrubs a session or sessions payload: did becomes a Ferry-wide
// pseudonym (no tenant is known for a session) or is removed without a
// Hasher; the IP address and user agent of attrs are dropped.
func Session(raw []byte, o EventOptions) (*SentrySession, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, &FieldError{Field: "session", Reason: ErrNotObject.Error()}
	}
	var s SentrySession
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, decodeError("session", err)
	}
	s.SID = cleanWord(s.SID)
	s.DID = hashOrDrop(o.Hasher, s.DID)
	s.Started = cleanTimestamp(s.Started)
	s.Timestamp = cleanTimestamp(s.Timestamp)
	s.Status = cleanWord(s.Status)
	if s.Attrs != nil {
		s.Attrs.Release = identifier(s.Attrs.Release)
		s.Attrs.Environment = identifier(s.Attrs.Environment)
	}
	for i := range s.Aggregates {
		s.Aggregates[i].Started = cleanTimestamp(s.Aggregates[i].Started)
		s.Aggregates[i].DID = hashOrDrop(o.Hasher, s.Aggregates[i].DID)
	}
	return &s, nil
}

func hashOrDrop(h Hasher, v string) string {
	if v == "" || h == nil {
		return ""
	}
	return h.Pseudonym("", v)
}
