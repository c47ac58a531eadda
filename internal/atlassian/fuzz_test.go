package atlassian

import (
	"testing"
	"time"
)

func FuzzParseJWT(f *testing.F) {
	tok, _ := signHS256(Claims{Iss: "ck", Exp: 2000000000, Qsh: "context-qsh", Aud: audience{"a"}}, []byte("secret"))
	f.Add(tok)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOlsxXX0.AA")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := parseJWT(s)
		if err != nil {
			return
		}
		// Whatever parses must still be refused without the right key and
		// algorithm: nothing in the header can switch the checks off.
		if tk.header.Alg != "HS256" && tk.verifyHS256([]byte("secret")) == nil {
			t.Fatalf("alg %q verified as HS256", tk.header.Alg)
		}
		if s != tok && tk.verifyHS256([]byte("secret")) == nil && tk.signingInput != tok[:len(tk.signingInput)] {
			t.Fatalf("forged token %q verified", s)
		}
		_ = tk.checkTime(time.Unix(1700000000, 0))
		_ = tk.checkQSH("x", false)
	})
}
