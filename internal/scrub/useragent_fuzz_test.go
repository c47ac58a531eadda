package scrub

import (
	"strings"
	"testing"
)

// User-Agent headers are the browser's; only a browser and OS name from a
// fixed list and a version made of digits and separators come out, so
// nothing else the header carries can ride along into an error event.
func FuzzParseUserAgent(f *testing.F) {
	for _, s := range []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0 ada@example.org",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", "Android 14; Mobile", "CrOS x86_64 15917.71.0", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		b, o := ParseUserAgent(ua)
		for _, nv := range []NameVersion{b, o} {
			if strings.Trim(nv.Version, "0123456789._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
				t.Fatalf("%q: version %q carries more than a version", ua, nv.Version)
			}
			if nv.Name != "" && strings.Contains(ua, nv.Name) && len(nv.Name) > 40 {
				t.Fatalf("%q: name %q", ua, nv.Name)
			}
			if strings.ContainsAny(nv.Name, "@;()/") {
				t.Fatalf("%q: name %q carries header text", ua, nv.Name)
			}
		}
	})
}
