package scrub

import (
	"net/netip"
	"regexp"
	"strings"
)

// textRule finds candidates with re, lets rewrite decide what each becomes,
// and is skipped when hint (a cheap scan implied by re) says re cannot match.
type textRule struct {
	re   *regexp.Regexp
	hint func(s string, f *feat) bool
	// rewrite returns the replacement for s[loc[0]:loc[1]] (loc holds the
	// submatch indexes), or ok=false to keep the candidate as it is.
	rewrite func(s string, loc []int, label string) (repl string, ok bool)
}

func (t *textRule) apply(s, label string) string {
	locs := t.re.FindAllStringSubmatchIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, loc := range locs {
		repl, ok := t.rewrite(s, loc, label)
		if !ok {
			continue
		}
		b.WriteString(s[last:loc[0]])
		b.WriteString(repl)
		last = loc[1]
	}
	if last == 0 && b.Len() == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// feat is what one pass over a string learns, enough for every hint.
type feat struct {
	at, eq, query, scheme, upperPair, word bool
	colons, dots, digits, hexRun           int
}

func features(s string) feat {
	var f feat
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '@':
			f.at = true
		case '=':
			f.eq = true
		case '?', '#':
			f.query = true
		case ':':
			f.colons++
			if i+2 < len(s) && s[i+1] == '/' && s[i+2] == '/' {
				f.scheme = true
			}
		case '.':
			f.dots++
		}
		if c >= '0' && c <= '9' {
			f.digits++
		}
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
			if run++; run > f.hexRun {
				f.hexRun = run
			}
		} else {
			run = 0
		}
		if !f.upperPair && i+3 < len(s) && isUpper(c) && isUpper(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			f.upperPair = true
		}
		if !f.word {
			switch c | 0x20 {
			case 'e', 'f', 'b', 'j':
				f.word = startsWord(s[i:])
			}
		}
	}
	return f
}

// startsWord reports whether s starts (in any case) with a word that a
// token rule needs: eyJ (JWT), fry_ (Ferry token), bearer, basic or jwt.
func startsWord(s string) bool {
	for _, w := range []string{"eyj", "fry_", "bearer", "basic", "jwt"} {
		if len(s) >= len(w) && containsFold(s[:len(w)], w) {
			return true
		}
	}
	return false
}

// any is false only when no text rule can match: no '@', '=', ':', '?' or
// '#', fewer than 3 dots or 13 digits, no hex run of 24, no XX00 and none of
// the words the token rules start with.
func (f *feat) any() bool {
	return f.at || f.eq || f.colons > 0 || f.query || f.dots >= 3 || f.digits >= 13 || f.hexRun >= 24 || f.upperPair || f.word
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isWord(c byte) bool { return isAlnum(c) || c == '_' }

// containsFold reports whether s contains the lower-case ASCII word w in any
// case, without allocating.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

func containsAnyFold(s string, ws ...string) bool {
	for _, w := range ws {
		if containsFold(s, w) {
			return true
		}
	}
	return false
}

func group(s string, loc []int, n int) string {
	if loc[2*n] < 0 {
		return ""
	}
	return s[loc[2*n]:loc[2*n+1]]
}

var urlUserinfo = &textRule{
	re:   regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s@"'<>\[\]]+@`),
	hint: func(s string, f *feat) bool { return f.scheme && f.at },
	rewrite: func(s string, loc []int, label string) (string, bool) {
		return group(s, loc, 1) + label + "@", true
	},
}

var urlQuery = &textRule{
	re:   regexp.MustCompile(`\b([A-Za-z][A-Za-z0-9+.-]*://[^\s?#"'<>]*)[?#][^\s"'<>]*`),
	hint: func(s string, f *feat) bool { return f.scheme && f.query },
	rewrite: func(s string, loc []int, _ string) (string, bool) {
		return group(s, loc, 1), true
	},
}

var jwtRule = &textRule{
	re:      regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`),
	hint:    func(s string, f *feat) bool { return f.word && f.dots >= 2 && strings.Contains(s, "eyJ") },
	rewrite: func(_ string, _ []int, label string) (string, bool) { return label, true },
}

var bearerRule = &textRule{
	re: regexp.MustCompile(`(?i)\b(bearer|basic|jwt)(\s+)([A-Za-z0-9._~+/=_-]{8,})`),
	hint: func(s string, f *feat) bool {
		return f.word && containsAnyFold(s, "bearer", "basic", "jwt")
	},
	rewrite: func(s string, loc []int, label string) (string, bool) {
		cred := group(s, loc, 3)
		// "basic" is also an English word: its credential must look like
		// base64 (a digit, a symbol, or mixed case), not like a word.
		if strings.EqualFold(group(s, loc, 1), "basic") && !credentialLike(cred) {
			return "", false
		}
		if strings.HasPrefix(cred, "[") {
			return "", false
		}
		return group(s, loc, 1) + group(s, loc, 2) + label, true
	},
}

func credentialLike(w string) bool {
	var upper, lower bool
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case isDigit(c) || strings.IndexByte("=+/._~-", c) >= 0:
			return true
		case isUpper(c) && i > 0:
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		}
	}
	return upper && lower
}

var ferryToken = &textRule{
	re:      regexp.MustCompile(`\bfry_[A-Za-z0-9_-]{8,}`),
	hint:    func(s string, f *feat) bool { return f.word && strings.Contains(s, "fry_") },
	rewrite: func(_ string, _ []int, label string) (string, bool) { return label, true },
}

// cookieHeader removes a cookie header's value: inside quotes (a JSON or
// quoted field) up to the closing quote, otherwise to the end of the line —
// a quote inside a header's cookies (RFC 6265 allows quoted values) must
// not end the match and leave the rest behind.
var cookieHeader = &textRule{
	re:   regexp.MustCompile(`(?i)\b((?:set-)?cookie)([ \t]*["']?[ \t]*:[ \t]*)(?:(")(?:[^"\\\r\n]|\\.)*|(')(?:[^'\\\r\n]|\\.)*|[^\s"'][^\r\n]*)`),
	hint: func(s string, f *feat) bool { return f.colons > 0 && containsFold(s, "cookie") },
	rewrite: func(s string, loc []int, _ string) (string, bool) {
		return group(s, loc, 1) + group(s, loc, 2) + group(s, loc, 3) + group(s, loc, 4), true
	},
}

var sessionCookie = &textRule{
	re: regexp.MustCompile(`(?i)\b(jsessionid|phpsessid|asp\.net_sessionid|connect\.sid|sessionid|session_id|session|sid|` +
		`csrftoken|csrf_token|_csrf|csrf|xsrf-token|xsrf_token|atlassian\.xsrf\.token|cloud\.session\.token|tenant\.session\.token|` +
		`__host-[\w-]+|__secure-[\w-]+)=([^;\s&"',\[\]]+)`),
	hint: func(s string, f *feat) bool {
		return f.eq && containsAnyFold(s, "sess", "sid", "csrf", "xsrf", "__host-", "__secure-")
	},
	rewrite: func(s string, loc []int, label string) (string, bool) {
		return group(s, loc, 1) + "=" + label, true
	},
}

var secretPair = &textRule{
	re: regexp.MustCompile(`(?i)\b([\w.$-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credentials?|private[_-]?key|` +
		`sentry_key|signature|auth|authorization|assertion|jwt))(\s*["']?\s*[:=]\s*["']?)([^\s"'&,;)}\[\]]+)`),
	hint: func(s string, f *feat) bool {
		return (f.eq || f.colons > 0) &&
			containsAnyFold(s, "pass", "pwd", "secret", "token", "key", "auth", "credential", "signature", "assertion", "jwt")
	},
	rewrite: func(s string, loc []int, label string) (string, bool) {
		return group(s, loc, 1) + group(s, loc, 2) + label, true
	},
}

var emailRule = &textRule{
	re:      regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`),
	hint:    func(s string, f *feat) bool { return f.at },
	rewrite: func(_ string, _ []int, label string) (string, bool) { return label, true },
}

const uuidRe = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

var accountIDRule = &textRule{
	re:      regexp.MustCompile(`\b(?:\d{6}:` + uuidRe + `|qm:` + uuidRe + `:` + uuidRe + `|[0-9a-f]{24})\b`),
	hint:    func(s string, f *feat) bool { return f.colons > 0 || f.hexRun >= 24 },
	rewrite: func(_ string, _ []int, label string) (string, bool) { return label, true },
}

var ipv6Rule = &textRule{
	re:   regexp.MustCompile(`(?i)(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{0,4})`),
	hint: func(s string, f *feat) bool { return f.colons >= 2 },
	rewrite: func(s string, loc []int, label string) (string, bool) {
		m := s[loc[0]:loc[1]]
		if loc[0] > 0 && (isWord(s[loc[0]-1]) || s[loc[0]-1] == ':' || s[loc[0]-1] == '.') {
			return "", false
		}
		if loc[1] < len(s) && (isWord(s[loc[1]]) || s[loc[1]] == ':' || s[loc[1]] == '.' && loc[1]+1 < len(s) && isDigit(s[loc[1]+1])) {
			return "", false
		}
		if !strings.ContainsAny(m, "0123456789abcdefABCDEF") {
			return "", false // "::" alone is punctuation, not an address
		}
		a, err := netip.ParseAddr(m)
		if err != nil || !a.Is6() {
			return "", false
		}
		return label, true
	},
}

var ipv4Rule = &textRule{
	re:   regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`),
	hint: func(s string, f *feat) bool { return f.dots >= 3 && f.digits >= 4 },
	rewrite: func(s string, loc []int, label string) (string, bool) {
		// Not inside a longer word or dotted number (1.2.3.4.5, v1.2.3.4).
		if loc[0] > 0 && (isWord(s[loc[0]-1]) || s[loc[0]-1] == '.') {
			return "", false
		}
		if loc[1] < len(s) && (isWord(s[loc[1]]) || s[loc[1]] == '.' && loc[1]+1 < len(s) && isDigit(s[loc[1]+1])) {
			return "", false
		}
		for _, part := range strings.Split(s[loc[0]:loc[1]], ".") {
			n := 0
			for i := 0; i < len(part); i++ {
				n = n*10 + int(part[i]-'0')
			}
			if n > 255 {
				return "", false
			}
		}
		return label, true
	},
}

// cardRule's candidates are runs of 13 or more digits with single spaces or
// dashes between them; inside a run, the longest span of whole groups that
// is 13–19 digits, starts with 2–6 and passes Luhn is a card.
var cardRule = &textRule{
	re:   regexp.MustCompile(`\d(?:[ -]?\d){12,}`),
	hint: func(s string, f *feat) bool { return f.digits >= 13 },
	rewrite: func(s string, loc []int, _ string) (string, bool) {
		if loc[0] > 0 && isAlnum(s[loc[0]-1]) || loc[1] < len(s) && isAlnum(s[loc[1]]) {
			return "", false // part of a longer token (a hash, an id)
		}
		return maskSpans(s[loc[0]:loc[1]], 13, 19, func(d string) bool {
			return d[0] >= '2' && d[0] <= '6' && Luhn(d)
		})
	},
}

// ibanRule's candidates start with two capital letters and two digits;
// groups of letters and digits may follow, separated by single spaces. The
// longest span of whole groups from the start that is 15–34 characters and
// passes mod 97 is an IBAN.
var ibanRule = &textRule{
	re:   regexp.MustCompile(`\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,40}`),
	hint: func(s string, f *feat) bool { return f.upperPair },
	rewrite: func(s string, loc []int, _ string) (string, bool) {
		m := s[loc[0]:loc[1]]
		groups := splitGroups(m)
		for j := len(groups) - 1; j >= 0; j-- {
			end := groups[j][1]
			compact := strings.ReplaceAll(m[:end], " ", "")
			if len(compact) < 15 || len(compact) > 34 || !IBANValid(compact) {
				continue
			}
			if end < len(m) && m[end] != ' ' {
				continue
			}
			return maskAlnum(m[:end]) + m[end:], true
		}
		return "", false
	},
}

// splitGroups returns the [start,end) of each run of non-separator bytes.
func splitGroups(m string) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i <= len(m); i++ {
		sep := i == len(m) || m[i] == ' ' || m[i] == '-'
		if !sep && start < 0 {
			start = i
		}
		if sep && start >= 0 {
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	return out
}

// maskSpans masks every span of whole groups whose digits (count in
// [lo,hi]) pass ok, longest first from the leftmost group. Only spans of at
// most hi digits are looked at, so a long run costs O(groups × hi).
func maskSpans(m string, lo, hi int, ok func(digits string) bool) (string, bool) {
	groups := splitGroups(m)
	out := []byte(m)
	changed := false
	for i := 0; i < len(groups); {
		last := i - 1 // the furthest group a span from i may reach
		n := 0
		for j := i; j < len(groups); j++ {
			if n += groups[j][1] - groups[j][0]; n > hi {
				break
			}
			last = j
		}
		found := false
		for j := last; j >= i; j-- {
			d := digitsOf(m[groups[i][0]:groups[j][1]])
			if len(d) < lo || len(d) > hi || !ok(d) {
				continue
			}
			copy(out[groups[i][0]:], maskAlnum(m[groups[i][0]:groups[j][1]]))
			changed, found = true, true
			i = j + 1
			break
		}
		if !found {
			i++
		}
	}
	return string(out), changed
}

func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// maskAlnum replaces every letter and digit but the last four with '*',
// keeping separators.
func maskAlnum(s string) string {
	b := []byte(s)
	keep := 4
	for i := len(b) - 1; i >= 0; i-- {
		if !isAlnum(b[i]) {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		b[i] = '*'
	}
	return string(b)
}

// Luhn reports whether a string of digits passes the Luhn check.
func Luhn(digits string) bool {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return len(digits) > 0 && sum%10 == 0
}

// IBANValid reports whether s (no spaces, upper case) is two letters, two
// digits and letters or digits whose ISO 13616 mod-97 remainder is 1.
func IBANValid(s string) bool {
	if len(s) < 5 || !isUpper(s[0]) || !isUpper(s[1]) || !isDigit(s[2]) || !isDigit(s[3]) {
		return false
	}
	rem := 0
	add := func(c byte) bool {
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
		return true
	}
	for i := 4; i < len(s); i++ {
		if !add(s[i]) {
			return false
		}
	}
	for i := 0; i < 4; i++ {
		add(s[i])
	}
	return rem == 1
}
