package atlassian

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Connect JWTs, hand-rolled on the standard library so that every check is
// visible here: the caller names the one algorithm it accepts, and the header
// cannot change that (no "none", no HS256 keyed with an RSA public key).

var (
	ErrMalformed  = errors.New("atlassian: malformed JWT")
	ErrAlgorithm  = errors.New("atlassian: JWT algorithm not accepted here")
	ErrSignature  = errors.New("atlassian: JWT signature invalid")
	ErrExpired    = errors.New("atlassian: JWT expired or not yet valid")
	ErrQSH        = errors.New("atlassian: JWT qsh does not match the request")
	ErrContextQSH = errors.New("atlassian: context-qsh token not accepted here")
	ErrAudience   = errors.New("atlassian: JWT audience is not this app")
	ErrKeyID      = errors.New("atlassian: JWT key id missing or unknown")
	ErrIssuer     = errors.New("atlassian: JWT issuer unknown or not the payload's clientKey")
)

// maxTokenLen bounds the work an unauthenticated caller can make Ferry do.
const maxTokenLen = 8 << 10

// clockSkew is how far apart Jira's clock and ours may be.
const clockSkew = 30 * time.Second

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

// audience is a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// Claims are the registered and Connect claims Ferry reads.
type Claims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub,omitempty"`
	Aud audience `json:"aud,omitempty"`
	Iat int64    `json:"iat"`
	Exp int64    `json:"exp"`
	Qsh string   `json:"qsh,omitempty"`
	Jti string   `json:"jti,omitempty"` // names a lifecycle token in the record of used ones
}

// token is a parsed but not yet verified JWT.
type token struct {
	header       jwtHeader
	claims       Claims
	signingInput string
	sig          []byte
}

var b64 = base64.RawURLEncoding

// parseJWT splits and decodes a compact JWT. It verifies nothing.
func parseJWT(s string) (*token, error) {
	if len(s) == 0 || len(s) > maxTokenLen {
		return nil, ErrMalformed
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	t := &token{signingInput: parts[0] + "." + parts[1]}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, ErrMalformed
	}
	if err := json.Unmarshal(hb, &t.header); err != nil {
		return nil, ErrMalformed
	}
	cb, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, ErrMalformed
	}
	if err := json.Unmarshal(cb, &t.claims); err != nil {
		return nil, ErrMalformed
	}
	if t.sig, err = b64.DecodeString(parts[2]); err != nil {
		return nil, ErrMalformed
	}
	return t, nil
}

// verifyHS256 accepts only alg HS256 and a matching HMAC, compared in
// constant time.
func (t *token) verifyHS256(secret []byte) error {
	if t.header.Alg != "HS256" {
		return ErrAlgorithm
	}
	if len(secret) == 0 {
		return ErrSignature
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t.signingInput))
	if !hmac.Equal(m.Sum(nil), t.sig) {
		return ErrSignature
	}
	return nil
}

// verifyRS256 accepts only alg RS256 (PKCS #1 v1.5, SHA-256) by pub.
func (t *token) verifyRS256(pub *rsa.PublicKey) error {
	if t.header.Alg != "RS256" {
		return ErrAlgorithm
	}
	sum := sha256.Sum256([]byte(t.signingInput))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], t.sig) != nil {
		return ErrSignature
	}
	return nil
}

// checkTime requires exp (a token without one would live for ever) and an
// iat not in the future, each with clockSkew of tolerance.
func (t *token) checkTime(now time.Time) error {
	n := now.Unix()
	skew := int64(clockSkew / time.Second)
	if t.claims.Exp == 0 || n > t.claims.Exp+skew {
		return ErrExpired
	}
	if t.claims.Iat > n+skew {
		return ErrExpired
	}
	return nil
}

// checkQSH binds the token to this request. context-qsh is accepted only
// when the route allows it.
func (t *token) checkQSH(want string, allowContext bool) error {
	if t.claims.Qsh == ContextQSH {
		if allowContext {
			return nil
		}
		return ErrContextQSH
	}
	if !hmac.Equal([]byte(t.claims.Qsh), []byte(want)) {
		return ErrQSH
	}
	return nil
}

// signHS256 makes a compact HS256 JWT of claims.
func signHS256(claims any, secret []byte) (string, error) {
	hb, _ := json.Marshal(jwtHeader{Alg: "HS256", Typ: "JWT"})
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteString(b64.EncodeToString(hb))
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(cb))
	m := hmac.New(sha256.New, secret)
	m.Write(buf.Bytes())
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(m.Sum(nil)))
	return buf.String(), nil
}
