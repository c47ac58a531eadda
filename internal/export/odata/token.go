package odata

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Skiptoken layout, before base64url (no padding):
//
//	version (1 byte, = tokenVersion) | payload | HMAC-SHA256 (32 bytes)
//
// The MAC covers a fixed label, the version and the payload. The label keeps
// a MAC made here from ever verifying as a MAC for anything else signed with
// the same key; the version lets the layout change without old tokens being
// misread. The token is not encrypted: its payload is cursor state, never
// Jira content.
const (
	tokenVersion  = 1
	tokenLabel    = "ferry/odata/skiptoken\x00"
	macLen        = sha256.Size
	minKeyLen     = 16    // a shorter HMAC key is a configuration bug
	maxTokenChars = 16384 // above any cursor Ferry makes (a plan of 512 pieces); caps work on junk
)

// Strict: a token whose last character differs only in the unused low bits
// must not decode to the same bytes, or a tampered token would verify.
var tokenEncoding = base64.RawURLEncoding.Strict()

// SignToken returns payload as an opaque, URL-safe, versioned and
// HMAC-SHA256-signed $skiptoken. key must be at least 16 bytes (it panics
// otherwise: that is a wiring bug, not a request error). Derive the key per
// data source so that a token never resumes another source's feed.
func SignToken(key []byte, payload []byte) string {
	if len(key) < minKeyLen {
		panic("odata: SignToken key shorter than 16 bytes")
	}
	data := make([]byte, 0, 1+len(payload)+macLen)
	data = append(data, tokenVersion)
	data = append(data, payload...)
	data = append(data, tokenMAC(key, data)...)
	return tokenEncoding.EncodeToString(data)
}

// VerifyToken returns the payload of a token made by SignToken with key. A
// tampered, truncated, re-encoded or foreign token is a 400 "invalid
// $skiptoken"; the client should start again from the first page.
func VerifyToken(key []byte, tok string) ([]byte, error) {
	if len(key) < minKeyLen {
		return nil, internal("odata: VerifyToken key shorter than 16 bytes")
	}
	if len(tok) > maxTokenChars {
		return nil, invalidToken()
	}
	data, err := tokenEncoding.DecodeString(tok)
	if err != nil || len(data) < 1+macLen || data[0] != tokenVersion {
		return nil, invalidToken()
	}
	body, mac := data[:len(data)-macLen], data[len(data)-macLen:]
	if !hmac.Equal(mac, tokenMAC(key, body)) { // constant time
		return nil, invalidToken()
	}
	return body[1:], nil
}

func tokenMAC(key, versionAndPayload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenLabel))
	m.Write(versionAndPayload)
	return m.Sum(nil)
}

func invalidToken() *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidSkipToken, Target: "$skiptoken",
		Message: "invalid $skiptoken: request the first page again"}
}

// Cursor is where a feed resumes: what the $skiptoken of a nextLink carries.
type Cursor struct {
	Resume string // the fetch pipeline's resume point (a Jira nextPageToken, an offset, …); opaque here
	Served int    // rows returned by earlier pages, so that $top counts across pages
}

type cursorPayload struct {
	Query  string `json:"q"` // fingerprint of the query the cursor belongs to
	Resume string `json:"r"`
	Served int    `json:"n"`
}

// EncodeCursor signs c, bound to q, as a $skiptoken for NextLink.
func EncodeCursor(key []byte, q Query, c Cursor) string {
	b, _ := json.Marshal(cursorPayload{Query: q.fingerprint(), Resume: c.Resume, Served: c.Served})
	return SignToken(key, b)
}

// DecodeCursor verifies q.SkipToken and returns its cursor. A token made for
// a different query — another entity set, $filter, $orderby or $top, as when
// a client edits a nextLink — is rejected like a forged one: resuming it
// would return rows of some other result.
func DecodeCursor(key []byte, q Query) (Cursor, error) {
	payload, err := VerifyToken(key, q.SkipToken)
	if err != nil {
		return Cursor{}, err
	}
	var cp cursorPayload
	if err := json.Unmarshal(payload, &cp); err != nil || cp.Served < 0 || cp.Query != q.fingerprint() {
		return Cursor{}, invalidToken()
	}
	return Cursor{Resume: cp.Resume, Served: cp.Served}, nil
}

// fingerprint names what decides which rows, in which order, a query
// returns. $select, $count and $format do not, so they are left out.
func (q Query) fingerprint() string {
	var b strings.Builder
	b.WriteString(q.set)
	b.WriteByte(0)
	if q.Filter != nil {
		b.WriteString(q.Filter.String())
	}
	b.WriteByte(0)
	b.WriteString(orderByString(q.OrderBy))
	b.WriteByte(0)
	if q.Top != nil {
		b.WriteString(strconv.Itoa(*q.Top))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}
