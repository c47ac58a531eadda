// Package scrub removes personal data and secrets from anything Ferry keeps
// or sends on: error events on their way to Sentry (statement: Real-time
// Error Tracking Data, P5 — "error messages and information about the
// environment such as browser type, browser version, and operating system"
// and nothing else), and every log record (Logs Data, P7).
//
// All rules live in one table, Rules. Each rule has a method:
//
//   - replace: the match becomes a label such as [email];
//   - mask: all but the last four characters become '*' (cards, IBANs);
//   - hash: the value becomes a keyed pseudonym (the Sentry user block, a
//     session's distinct id), so events of one person can be counted
//     without saying who it is;
//   - remove: the value is dropped (query strings, cookies, request data,
//     breadcrumb messages).
//
// Text rules find values anywhere inside a string (emails, IP addresses,
// Luhn-valid card numbers, mod-97-valid IBANs, JWTs, bearer credentials,
// user:pass@ in URLs, secret key=value pairs, session and CSRF cookies,
// Atlassian accountIds). Key rules judge a field by its name (password,
// token, cookie, email, Jira content…). Event rules say what happens to the
// parts of a Sentry event; Event keeps only what the statement allows and
// scrubs every string it keeps with the text rules.
//
// Two profiles share the table: Events applies every text rule, Logs those
// marked for logs (log lines name listen addresses and URLs whose query
// parameters are kept, with secret values redacted).
package scrub

import "strings"

// Method is what a rule does to what it matches.
type Method string

const (
	Replace Method = "replace" // the match becomes a label, e.g. [email]
	Mask    Method = "mask"    // all but the last four characters become '*'
	Hash    Method = "hash"    // the value becomes a keyed pseudonym
	Remove  Method = "remove"  // the value is dropped
)

// Kind says where a rule looks.
type Kind string

const (
	TextRule  Kind = "text"  // a pattern inside any string
	KeyRule   Kind = "key"   // a field or attribute whose name matches
	EventRule Kind = "event" // a part of a Sentry event or session
)

// Rule is one row of the table.
type Rule struct {
	Name   string
	Kind   Kind
	Method Method
	Logs   bool   // text and key rules: also applied to log records
	Doc    string // what it finds and why
	Label  string // replace: what the match becomes in events ("[email]")

	text *textRule // TextRule
	keys *keyRule  // KeyRule
	Path string    // EventRule: the event part, e.g. "user", "breadcrumbs.values[].message"
}

// Redacted is what every replaced value becomes in logs: one placeholder, so
// log readers and the request log's tests see one word for "removed".
const Redacted = "[redacted]"

// Filtered is what the value of a secret-named field becomes in events,
// Sentry's own word for it.
const Filtered = "[Filtered]"

// Rules is the table. Text rules run in this order: URL parts first (so a
// password in user:pass@ is not mistaken for an email), then tokens, then
// personal data.
var Rules = []Rule{
	{Name: "url-userinfo", Kind: TextRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "user:pass@ (any user info) in a URL", text: urlUserinfo},
	{Name: "url-query", Kind: TextRule, Method: Remove,
		Doc: "the query string and fragment of an absolute URL (tokens, emails, search terms)", text: urlQuery},
	{Name: "jwt", Kind: TextRule, Method: Replace, Logs: true, Label: "[jwt]",
		Doc: "JSON Web Tokens: three base64url parts, the first starting eyJ", text: jwtRule},
	{Name: "bearer", Kind: TextRule, Method: Replace, Logs: true, Label: "[token]",
		Doc: "credentials after Bearer, Basic or JWT (Authorization header values)", text: bearerRule},
	{Name: "ferry-token", Kind: TextRule, Method: Replace, Logs: true, Label: "[token]",
		Doc: "Ferry's personal access tokens (fry_…)", text: ferryToken},
	{Name: "cookie-header", Kind: TextRule, Method: Remove, Logs: true,
		Doc: "everything after Cookie: or Set-Cookie:", text: cookieHeader},
	{Name: "session-cookie", Kind: TextRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "the value of session and CSRF cookies by name (JSESSIONID, PHPSESSID, csrftoken, XSRF-TOKEN, atlassian.xsrf.token, cloud.session.token, __Host-/__Secure- …)", text: sessionCookie},
	{Name: "secret-pair", Kind: TextRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "the value in name=value or name: value when the name ends in password, secret, token, key, auth, authorization, credential(s), signature, assertion or jwt", text: secretPair},
	{Name: "email", Kind: TextRule, Method: Replace, Logs: true, Label: "[email]",
		Doc: "email addresses", text: emailRule},
	{Name: "atlassian-account-id", Kind: TextRule, Method: Replace, Logs: true, Label: "[accountId]",
		Doc: "Atlassian accountIds: 557058:<uuid>, qm:<uuid>:<uuid> and 24 hex digits", text: accountIDRule},
	{Name: "ipv6", Kind: TextRule, Method: Replace, Label: "[ip]",
		Doc: "IPv6 addresses (parsed, not just colon-looking)", text: ipv6Rule},
	{Name: "ipv4", Kind: TextRule, Method: Replace, Label: "[ip]",
		Doc: "IPv4 addresses (each part ≤ 255; not a part of a longer dotted version number)", text: ipv4Rule},
	{Name: "card", Kind: TextRule, Method: Mask, Logs: true,
		Doc: "payment card numbers: 13–19 digits (spaces or dashes between groups) starting 2–6 and passing the Luhn check", text: cardRule},
	{Name: "iban", Kind: TextRule, Method: Mask, Logs: true,
		Doc: "IBANs: country letters, check digits and 11–30 letters or digits, passing the mod-97 check", text: ibanRule},

	{Name: "secret-key", Kind: KeyRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "fields named like secrets: password, secret, token, auth, cookie, session, csrf, credential, api key, private key, jwt, assertion, dsn, signature", keys: secretKeys},
	{Name: "personal-key", Kind: KeyRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "fields named like personal data: email, accountId, IP address, user name", keys: personalKeys},
	{Name: "content-key", Kind: KeyRule, Method: Replace, Logs: true, Label: Filtered,
		Doc: "fields holding Jira content (Customer Data): summary, description, body, comment, jql", keys: contentKeys},

	{Name: "user", Kind: EventRule, Method: Hash, Path: "user",
		Doc: "the Sentry user block: only a per-tenant pseudonym of its id, email or username is kept; without a pseudonym key it is removed"},
	{Name: "session-did", Kind: EventRule, Method: Hash, Path: "session.did",
		Doc: "a session's distinct id (the browser SDK puts the user's id or email there)"},
	{Name: "breadcrumb-message", Kind: EventRule, Method: Remove, Path: "breadcrumbs.values[].message",
		Doc: "breadcrumb messages and data (console output, URLs, clicked text); type, category, level and time stay"},
	{Name: "request-data", Kind: EventRule, Method: Remove, Path: "request.{data,query_string,cookies,headers,env}",
		Doc: "the request's body, query string, cookies, headers (Authorization, Cookie…) and environment; the URL stays without its query, the browser and OS are read from User-Agent first"},
	{Name: "frame-vars", Kind: EventRule, Method: Remove, Path: "exception.values[].stacktrace.frames[].vars",
		Doc: "local variables of stack frames (any value the code held)"},
	{Name: "unlisted-fields", Kind: EventRule, Method: Remove, Path: "*",
		Doc: "every field the statement does not allow: extra, modules, server_name, debug_meta, spans, user geo, request env, unknown contexts …"},
}

// Lookup returns the rule with the given name.
func Lookup(name string) (Rule, bool) {
	for _, r := range Rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}

func mustRule(name string) Rule {
	r, ok := Lookup(name)
	if !ok {
		panic("scrub: no rule " + name)
	}
	return r
}

// Profile is a view of the table: the text and key rules one consumer
// applies, and how replaced values are written.
type Profile struct {
	name    string
	text    []Rule
	keys    []Rule
	uniform string // non-empty: every replacement is this word (logs)
}

// Events applies every text and key rule, with a label per rule.
var Events = newProfile("events", false, "")

// Logs applies the rules marked Logs, every replacement written [redacted].
var Logs = newProfile("logs", true, Redacted)

func newProfile(name string, logsOnly bool, uniform string) *Profile {
	p := &Profile{name: name, uniform: uniform}
	for _, r := range Rules {
		if logsOnly && !r.Logs {
			continue
		}
		switch r.Kind {
		case TextRule:
			p.text = append(p.text, r)
		case KeyRule:
			p.keys = append(p.keys, r)
		}
	}
	return p
}

// Name is "events" or "logs".
func (p *Profile) Name() string { return p.name }

// TextRules returns the profile's text rules in the order they run.
func (p *Profile) TextRules() []Rule { return append([]Rule(nil), p.text...) }

// label is what a replace rule writes in this profile.
func (p *Profile) label(r Rule) string {
	if p.uniform != "" {
		return p.uniform
	}
	return r.Label
}

// Text returns s with every text rule of the profile applied.
func (p *Profile) Text(s string) string {
	if s == "" {
		return s
	}
	f := features(s)
	if !f.any() {
		return s // most strings (routes, codes, counts, words) need no rule at all
	}
	for _, r := range p.text {
		if !r.text.hint(s, &f) {
			continue
		}
		if out := r.text.apply(s, p.label(r)); out != s {
			s = out
			f = features(s)
		}
	}
	return s
}

// ApplyRule runs one text rule alone on s, as the profile would.
func (p *Profile) ApplyRule(r Rule, s string) string {
	if r.text == nil {
		return s
	}
	return r.text.apply(s, p.label(r))
}

// MayMatch reports whether the rule's cheap pre-check lets s through; when it
// is false, ApplyRule must leave s unchanged (a fuzz target checks this).
func MayMatch(r Rule, s string) bool {
	if r.text == nil {
		return false
	}
	f := features(s)
	return r.text.hint(s, &f)
}

// Pattern is the rule's candidate pattern: nothing outside a match of it is
// ever changed.
func (r Rule) Pattern() string {
	if r.text == nil {
		return ""
	}
	return r.text.re.String()
}

// KeyMatch returns the key rule that a field name falls under, if any.
func (p *Profile) KeyMatch(name string) (Rule, bool) {
	k := normKey(name)
	for _, r := range p.keys {
		if r.keys.match(k) {
			return r, true
		}
	}
	return Rule{}, false
}

// SecretKey reports whether a field or attribute name says its value must
// not be kept.
func (p *Profile) SecretKey(name string) bool {
	_, ok := p.KeyMatch(name)
	return ok
}

// KeyLabel is what the value of a field matched by a key rule becomes.
func (p *Profile) KeyLabel(r Rule) string { return p.label(r) }

func normKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ' || c == '$':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// keyRule matches a normalised field name (lower case, without _ - . $ and
// spaces) that contains one of frags or equals one of exact, unless it is
// one of except.
type keyRule struct {
	frags  []string
	exact  []string
	except []string
}

func (k *keyRule) match(n string) bool {
	for _, e := range k.except {
		if n == e {
			return false
		}
	}
	for _, e := range k.exact {
		if n == e {
			return true
		}
	}
	for _, f := range k.frags {
		if strings.Contains(n, f) {
			return true
		}
	}
	return false
}

var (
	secretKeys = &keyRule{
		frags: []string{"password", "passwd", "secret", "token", "authorization", "cookie", "jwt", "apikey",
			"credential", "assertion", "privatekey", "dsn", "csrf", "xsrf", "session", "sentrykey", "signature"},
		exact: []string{"auth", "pwd", "pass", "sig", "authheader", "xauth"},
		// Names that contain a fragment but hold no secret: counts, ids and
		// prefixes of tokens, keyed pseudonyms, byte counts.
		except: []string{"tokenprefix", "tokenid", "tokens", "tokencount", "accountpseudonym", "bodybytes",
			"sessionstorage", "sessioncount"},
	}
	personalKeys = &keyRule{
		frags:  []string{"email", "accountid", "ipaddress"},
		exact:  []string{"ip", "username", "remoteaddr", "xforwardedfor", "phone"},
		except: []string{"accountpseudonym"},
	}
	contentKeys = &keyRule{
		frags:  []string{"summary", "description", "jql", "body"},
		exact:  []string{"comment", "comments"},
		except: []string{"bodybytes"},
	}
)
