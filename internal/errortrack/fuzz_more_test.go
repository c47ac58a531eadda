package errortrack

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/url"
	"testing"
)

// Bodies arrive plain, gzip or deflate: whatever is sent, reading stops at
// the envelope limit after decompression (a small bomb cannot grow past it)
// and fails as a client error, never a panic.
func FuzzReadBody(f *testing.F) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(bytes.Repeat([]byte("a"), 4096))
	w.Close()
	f.Add("gzip", gz.Bytes())
	f.Add("deflate", []byte{0x78, 0x9c, 0x4b, 0x4c, 0x04, 0x00, 0x02, 0x4b, 0x01, 0x26})
	f.Add("", []byte("{}\n{\"type\":\"event\"}\n{}"))
	f.Add("br", []byte("x"))
	f.Add("x-gzip", []byte{0x1f, 0x8b})
	tr := New(Options{MaxEnvelopeBytes: 1024})
	f.Fuzz(func(t *testing.T, enc string, body []byte) {
		r, _ := http.NewRequest("POST", "/errors/api/1/envelope/", bytes.NewReader(body))
		r.Header.Set("Content-Encoding", enc)
		b, err := tr.readBody(r)
		if err == nil && len(b) > 1024 {
			t.Fatalf("read %d bytes past the 1024-byte limit", len(b))
		}
	})
}

// The DSN is configuration; what parses prints back to itself.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42", "http://k0123456789abcdef@127.0.0.1:9000/sub/path/7",
		"https://@host/1", "https://key@host/x", "https://0123456789abcdef@host/1?x=1", "mailto:a@b/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSN(s)
		if err != nil {
			return
		}
		again, err := ParseDSN(d.String())
		if err != nil || again != d {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, d, d.String(), again, err)
		}
	})
}

// The public key comes from the query or from X-Sentry-Auth/Authorization
// headers in several spellings: whatever is sent, what is taken is what a
// sentry_key said, and a key is only ever compared, never interpreted.
func FuzzAuthKey(f *testing.F) {
	f.Add("sentry_key=abc", "Sentry sentry_version=7, sentry_key=0123456789abcdef", "")
	f.Add("", "", "Sentry sentry_key=\"k\", sentry_secret=s")
	f.Add("sentry_key", "sentry_key=,", "sentry ")
	f.Fuzz(func(t *testing.T, query, xauth, authz string) {
		q, _ := url.ParseQuery(query)
		h := http.Header{}
		h.Set("X-Sentry-Auth", xauth)
		h.Set("Authorization", authz)
		k := authKey(q, h.Get)
		if k != "" && q.Get("sentry_key") == "" && !bytes.Contains([]byte(xauth+authz), []byte("sentry_key")) {
			t.Fatalf("key %q taken from %q %q %q", k, query, xauth, authz)
		}
	})
}
