package forge_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"ferry/internal/forge"
)

// Every parser of outside input has a fuzz target: the FIT (from any
// caller), the JWKS and the offlineUserAuthToken answer (from the network).
// None may panic, and what they accept must hold up.

func FuzzVerifyFIT(f *testing.F) {
	fk := newFakeForge(f, time.Now)
	f.Add(fk.sign(fk.newFIT(""), nil))
	f.Add(fk.sign(fk.newFIT(userA), nil))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("")
	v, err := forge.NewVerifier(forge.VerifierOptions{AppID: appID, JWKSURL: fk.srv.URL + "/jwks.json", APIOrigin: fk.srv.URL,
		AllowLoopback: true, JWKSClient: fk.srv.Client()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := forge.ParseFIT(tok); err != nil {
			return
		}
		r := request("POST", forge.RouteTrigger, tok, nil, nil)
		inv, err := v.Verify(r.Context(), r)
		if err == nil && (inv.AppID != appID || inv.InstallationID == "" || inv.CloudID == "" || inv.Nonce.Digest == "") {
			t.Fatalf("accepted an invocation without its identity: %+v", inv)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	fk := newFakeForge(f, time.Now)
	w := httptest.NewRecorder()
	fk.handleJWKS(w, httptest.NewRequest("GET", "/jwks.json", nil))
	f.Add(w.Body.Bytes())
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"k","crv":"P-256"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := forge.ParseJWKS(b)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.N.BitLen() < 2048 || k.E < 3 {
				t.Fatalf("accepted a weak or unnamed key %q (%d bits, e=%d)", kid, k.N.BitLen(), k.E)
			}
		}
	})
}

func FuzzParseOfflineToken(f *testing.F) {
	f.Add([]byte(`{"data":{"offlineUserAuthToken":{"success":true,"errors":null,"authToken":{"token":"t","ttl":900}}}}`))
	f.Add([]byte(`{"data":{"offlineUserAuthToken":{"success":false,"errors":[{"message":"Service accounts cannot be impersonated"}],"authToken":null}}}`))
	f.Add([]byte(`{"errors":[{"message":"Unauthorized"}],"data":null}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, ttl, reason, err := forge.ParseOfflineToken(b)
		if err == nil && (tok == "" || ttl <= 0 || ttl > 24*time.Hour) {
			t.Fatalf("accepted an unusable token: %q %v", tok, ttl)
		}
		if err != nil && (reason == "" || len(reason) > 700) {
			t.Fatalf("a refusal must carry a short reason: %q", reason)
		}
	})
}
