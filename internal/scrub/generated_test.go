package scrub_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"ferry/internal/scrub"
)

// Generated cases: values made by an independent recipe (check digits
// computed here, addresses formatted by net/netip), planted in random
// text, must never survive; their near misses must survive untouched.

// fillers hold no digits: a digit next to a number would make a different
// number, whose spans the near-miss checks could not vouch for.
var fillers = []string{"failed to charge", "user", "for", "at", "note:", "->", "(retry)", "x", "order"}

func plant(r *rand.Rand, v string) string {
	var b strings.Builder
	for i := r.IntN(3); i > 0; i-- {
		b.WriteString(fillers[r.IntN(len(fillers))] + " ")
	}
	b.WriteString(v)
	for i := r.IntN(3); i > 0; i-- {
		b.WriteString(" " + fillers[r.IntN(len(fillers))])
	}
	return b.String()
}

// luhnCheckDigit computes the digit that makes body+digit pass Luhn.
func luhnCheckDigit(body string) byte {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[len(body)-1-i] - '0')
		if i%2 == 0 { // these get doubled once the check digit is appended
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func randomDigits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func formatGroups(r *rand.Rand, s string) string {
	sep := []string{"", " ", "-"}[r.IntN(3)]
	if sep == "" {
		return s
	}
	var parts []string
	for len(s) > 4 {
		parts = append(parts, s[:4])
		s = s[4:]
	}
	return strings.Join(append(parts, s), sep)
}

func TestGeneratedCardNumbersAreMaskedAndNearMissesKept(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		n := 13 + r.IntN(7)
		body := string(byte('2'+r.IntN(5))) + randomDigits(r, n-2)
		card := body + string(luhnCheckDigit(body))
		wrong := body + string('0'+(luhnCheckDigit(body)-'0'+1+byte(r.IntN(9)))%10)
		shown := formatGroups(r, card)
		in := plant(r, shown)
		out := scrub.Events.Text(in)
		if strings.Contains(strings.NewReplacer(" ", "", "-", "").Replace(out), card) {
			t.Fatalf("card %s survives in %q -> %q", card, in, out)
		}
		if logs := scrub.Logs.Text(in); strings.Contains(strings.NewReplacer(" ", "", "-", "").Replace(logs), card) {
			t.Fatalf("card %s survives in logs: %q", card, logs)
		}
		// Unseparated, so the whole number is the only span the rule
		// considers (with groups, a part of it may pass Luhn by chance).
		miss := plant(r, wrong)
		if got := scrub.Events.Text(miss); got != miss {
			t.Fatalf("non-Luhn number changed: %q -> %q", miss, got)
		}
	}
}

// ibanCheck computes ISO 13616 check digits with math/big, independently
// of the package's streaming remainder.
func ibanCheck(country, bban string) string {
	var digits strings.Builder
	for _, c := range bban + country + "00" {
		if c >= 'A' && c <= 'Z' {
			fmt.Fprintf(&digits, "%d", c-'A'+10)
		} else {
			digits.WriteRune(c)
		}
	}
	n, _ := new(big.Int).SetString(digits.String(), 10)
	rem := new(big.Int).Mod(n, big.NewInt(97)).Int64()
	return fmt.Sprintf("%02d", 98-rem)
}

func TestGeneratedIBANsAreMaskedAndBadCheckDigitsKept(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	for i := 0; i < 2000; i++ {
		country := string([]byte{byte('A' + r.IntN(26)), byte('A' + r.IntN(26))})
		bban := make([]byte, 11+r.IntN(20))
		for j := range bban {
			bban[j] = alnum[r.IntN(len(alnum))]
		}
		check := ibanCheck(country, string(bban))
		iban := country + check + string(bban)
		shown := iban
		if r.IntN(2) == 0 {
			shown = formatGroups(rand.New(rand.NewPCG(uint64(i), 9)), iban)
			shown = strings.ReplaceAll(shown, "-", " ")
		}
		in := plant(r, shown)
		out := scrub.Events.Text(in)
		if strings.Contains(strings.ReplaceAll(out, " ", ""), iban[:len(iban)-4]) {
			t.Fatalf("IBAN %s survives in %q -> %q", iban, in, out)
		}
		bad := fmt.Sprintf("%02d", (int(check[0]-'0')*10+int(check[1]-'0')+1+r.IntN(90))%98+2)
		if bad == check {
			continue
		}
		miss := plant(r, country+bad+string(bban))
		if scrub.Events.ApplyRule(mustLookup(t, "iban"), miss) != miss {
			t.Fatalf("IBAN with wrong check digits %s masked in %q", bad, miss)
		}
	}
}

func TestGeneratedIPAddressesAreReplaced(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 3000; i++ {
		var a netip.Addr
		if i%2 == 0 {
			a = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		} else {
			var b [16]byte
			for j := range b {
				if r.IntN(3) > 0 { // runs of zeros exercise the :: forms
					b[j] = byte(r.IntN(256))
				}
			}
			a = netip.AddrFrom16(b)
		}
		in := plant(r, a.String())
		out := scrub.Events.Text(in)
		if strings.Contains(out, a.String()) {
			t.Fatalf("address %s survives: %q -> %q", a, in, out)
		}
	}
}

func TestGeneratedEmailsAndAccountIDsAreReplaced(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const local = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
	const hexd = "0123456789abcdef"
	pick := func(set string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = set[r.IntN(len(set))]
		}
		return string(b)
	}
	for i := 0; i < 2000; i++ {
		email := pick(local[:62], 1) + pick(local, r.IntN(12)) + "@" + pick(local[:36], 1+r.IntN(8)) + "." + pick(local[:26], 2+r.IntN(4))
		acct := pick(hexd, 24)
		if i%2 == 0 {
			acct = "557058:" + pick(hexd, 8) + "-" + pick(hexd, 4) + "-" + pick(hexd, 4) + "-" + pick(hexd, 4) + "-" + pick(hexd, 12)
		}
		for _, p := range []*scrub.Profile{scrub.Events, scrub.Logs} {
			in := plant(r, email) + " / " + plant(r, acct)
			out := p.Text(in)
			if strings.Contains(out, email) || strings.Contains(out, acct) {
				t.Fatalf("%s: %q -> %q", p.Name(), in, out)
			}
		}
	}
}

func mustLookup(t *testing.T, name string) scrub.Rule {
	t.Helper()
	r, ok := scrub.Lookup(name)
	if !ok {
		t.Fatalf("no rule %s", name)
	}
	return r
}

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`)
	jwtRe   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.`)
)

func FuzzText(f *testing.F) {
	for _, s := range []string{"x@y.io", "Bearer abcdefghij1", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00",
		"https://u:p@h/x?q=1#f", "password=x", "Cookie: a=b", "::ffff:1.2.3.4", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
		"eyJa.eyJb.c", "JSESSIONID=abc", "fe80::1%eth0", "[ip]@x.io"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []*scrub.Profile{scrub.Events, scrub.Logs} {
			out := p.Text(s)
			if again := p.Text(out); again != out {
				t.Fatalf("%s not idempotent: %q -> %q -> %q", p.Name(), s, out, again)
			}
			if m := emailRe.FindString(out); m != "" {
				t.Fatalf("%s keeps an email %q: %q -> %q", p.Name(), m, s, out)
			}
			if m := jwtRe.FindString(out); m != "" {
				t.Fatalf("%s keeps a JWT %q: %q -> %q", p.Name(), m, s, out)
			}
		}
		// The pre-check must never skip a string a rule would change.
		for _, r := range scrub.Rules {
			if r.Kind != scrub.TextRule || scrub.MayMatch(r, s) {
				continue
			}
			if scrub.Events.ApplyRule(r, s) != s {
				t.Fatalf("pre-check of %s skipped %q, which the rule changes", r.Name, s)
			}
		}
	})
}

func stringsIn(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range x {
			out = append(append(out, k), stringsIn(e)...)
		}
		return out
	}
	return nil
}

func FuzzEvent(f *testing.F) {
	f.Add([]byte(`{"event_id":"0123456789abcdef0123456789abcdef","message":"x@y.io","user":{"email":"a@b.co"}}`))
	f.Add([]byte(`{"exception":[{"type":"E","value":"eyJa.eyJb.c","stacktrace":{"frames":[{"filename":"/a/5b10ac8d82e05b22cc7d4ef5.js","vars":{"x":1}}]}}],"tags":[["k","v@w.io"]]}`))
	f.Add([]byte(`{"request":{"headers":[["User-Agent","Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0"]],"url":"http://h/?q=1"},"contexts":{"os":{"name":1}}}`))
	f.Add([]byte(`{"breadcrumbs":{"values":[{"message":"m","timestamp":"2026-01-01T00:00:00Z"}]},"logentry":{"formatted":"f"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := scrub.Event(b, eventOpts)
		if err != nil {
			return
		}
		out, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		// Look at the strings as a reader of the JSON sees them (escapes
		// such as \u0026 decoded), keys and values alike.
		var tree any
		json.Unmarshal(out, &tree)
		for _, str := range stringsIn(tree) {
			if m := emailRe.FindString(str); m != "" {
				t.Fatalf("event keeps an email %q: %s", m, out)
			}
			if m := jwtRe.FindString(str); m != "" {
				t.Fatalf("event keeps a JWT %q: %s", m, out)
			}
		}
		if _, err := scrub.Event(out, eventOpts); err != nil {
			t.Fatalf("scrubbed event does not read back: %v: %s", err, out)
		}
	})
}
