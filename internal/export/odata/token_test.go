package odata

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

var (
	key      = []byte("0123456789abcdef0123456789abcdef")
	otherKey = []byte("fedcba9876543210fedcba9876543210")
)

func TestTokenRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{{}, []byte("x"), []byte(`{"r":"jira-next","n":100}`), bytes.Repeat([]byte{0xff}, 1000)} {
		tok := SignToken(key, payload)
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token is not URL-safe: %s", tok)
		}
		got, err := VerifyToken(key, tok)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("round trip: %q %v", got, err)
		}
	}
}

// Changing any byte of the token, in any way, is caught.
func TestTokenTamperEveryBytePosition(t *testing.T) {
	tok := SignToken(key, []byte(`{"q":"abc","r":"next-page","n":200}`))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for i := range raw {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(raw)
			bad[i] ^= flip
			_, err := VerifyToken(key, base64.RawURLEncoding.EncodeToString(bad))
			wantError(t, err, 400, "$skiptoken")
		}
	}
	// … and any character of its text form, including the last one's spare bits.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%64], '=', '+', '/', '.'} {
			bad := tok[:i] + string(c) + tok[i+1:]
			if bad == tok {
				continue
			}
			_, err := VerifyToken(key, bad)
			wantError(t, err, 400, "$skiptoken")
		}
	}
}

func TestTokenRejects(t *testing.T) {
	tok := SignToken(key, []byte("payload"))
	raw, _ := base64.RawURLEncoding.DecodeString(tok)
	for name, bad := range map[string]string{
		"empty":        "",
		"truncated":    tok[:len(tok)-1],
		"half":         tok[:len(tok)/2],
		"no mac":       base64.RawURLEncoding.EncodeToString(raw[:len(raw)-32]),
		"extended":     tok + "AA",
		"padded":       base64.URLEncoding.EncodeToString(raw),
		"std alphabet": strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+",
		"version 2":    base64.RawURLEncoding.EncodeToString(append([]byte{2}, raw[1:]...)),
		"not base64":   "!!!!",
		"huge":         strings.Repeat("A", 5000),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := VerifyToken(key, bad)
			wantError(t, err, 400, "$skiptoken")
		})
	}
	_, err := VerifyToken(otherKey, tok)
	wantError(t, err, 400, "$skiptoken")
	_, err = VerifyToken([]byte("short"), tok)
	wantError(t, err, 500, "")
}

func TestCursorIsBoundToItsQuery(t *testing.T) {
	parse := func(raw string) Query {
		q, err := ParseQuery(raw, issues, 0)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := parse("$filter=Status eq 'Done'&$orderby=Created desc&$top=500&$select=Key")
	tok := EncodeCursor(key, q, Cursor{Resume: "jira-token-1", Served: 100})

	// Following the nextLink: same query, the token appended.
	next := NextLink("https://f.example/odata/s1/Issues", q, tok)
	_, raw, _ := strings.Cut(next, "?")
	c, err := DecodeCursor(key, parse(raw))
	if err != nil || c.Resume != "jira-token-1" || c.Served != 100 {
		t.Fatalf("%+v %v", c, err)
	}
	// $select and $count do not change the rows: still valid.
	if _, err := DecodeCursor(key, parse("$filter=Status eq 'Done'&$orderby=Created desc&$top=500&$count=true&$skiptoken="+tok)); err != nil {
		t.Fatal(err)
	}
	// An edited filter, order or top, or another set, is refused.
	for _, raw := range []string{
		"$filter=Status eq 'Open'&$orderby=Created desc&$top=500&$skiptoken=" + tok,
		"$filter=Status eq 'Done'&$orderby=Created&$top=500&$skiptoken=" + tok,
		"$filter=Status eq 'Done'&$orderby=Created desc&$top=5000&$skiptoken=" + tok,
		"$filter=Status eq 'Done'&$orderby=Created desc&$skiptoken=" + tok,
	} {
		_, err := DecodeCursor(key, parse(raw))
		wantError(t, err, 400, "$skiptoken")
	}
	other, _ := ParseQuery("$skiptoken="+tok, changelog, 0)
	_, err = DecodeCursor(key, other)
	wantError(t, err, 400, "$skiptoken")
	// A validly signed token that is not a cursor.
	junk, _ := ParseQuery("$skiptoken="+SignToken(key, []byte("not json")), issues, 0)
	_, err = DecodeCursor(key, junk)
	wantError(t, err, 400, "$skiptoken")
}

func TestSignTokenPanicsOnShortKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	SignToken([]byte("short"), nil)
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		body   string
	}{
		{badRequest("$top", "$top must be a non-negative integer"), 400,
			`{"error":{"code":"BadRequest","message":"$top must be a non-negative integer","target":"$top","details":[]}}`},
		{notImplemented("$expand", "$expand is not supported"), 501,
			`{"error":{"code":"NotImplemented","message":"$expand is not supported","target":"$expand","details":[]}}`},
		{fmt.Errorf("db password is hunter2"), 500,
			`{"error":{"code":"InternalError","message":"An internal error occurred. It has been logged.","details":[]}}`},
		{internal("FieldMap.Zone is not set"), 500,
			`{"error":{"code":"InternalError","message":"An internal error occurred. It has been logged.","details":[]}}`},
	} {
		rec := httptest.NewRecorder()
		WriteError(rec, tc.err)
		if rec.Code != tc.status || strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		if rec.Header().Get("OData-Version") != "4.0" || rec.Header().Get("Content-Type") != "application/json;odata.metadata=minimal" {
			t.Fatalf("headers %v", rec.Header())
		}
	}
}
