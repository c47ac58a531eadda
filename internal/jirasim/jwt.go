package jirasim

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The simulator hand-rolls the two JWT algorithms Connect uses (HS256 for
// app↔product calls, RS256 for signed installs) instead of sharing a JWT
// library with Ferry, so a bug on one side is caught by the other.

var b64 = base64.RawURLEncoding

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

type jwtToken struct {
	Header jwtHeader
	Claims map[string]any
	signed string // header.payload
	sig    []byte
}

var (
	errJWTMalformed = errors.New("malformed JWT")
	errJWTSignature = errors.New("JWT signature does not match")
	errJWTAlg       = errors.New("JWT algorithm not accepted")
)

func signJWT(h jwtHeader, claims any, sign func(signed []byte) ([]byte, error)) (string, error) {
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	if sign == nil { // alg "none"
		return signed + ".", nil
	}
	sig, err := sign([]byte(signed))
	if err != nil {
		return "", err
	}
	return signed + "." + b64.EncodeToString(sig), nil
}

func hs256(secret []byte) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		m := hmac.New(sha256.New, secret)
		m.Write(b)
		return m.Sum(nil), nil
	}
}

func rs256(key *rsa.PrivateKey) func([]byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		sum := sha256.Sum256(b)
		return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	}
}

// parseJWT decodes a compact JWT without verifying it.
func parseJWT(tok string) (*jwtToken, error) {
	segs := strings.Split(tok, ".")
	if len(segs) != 3 {
		return nil, errJWTMalformed
	}
	hb, err := b64.DecodeString(segs[0])
	if err != nil {
		return nil, errJWTMalformed
	}
	cb, err := b64.DecodeString(segs[1])
	if err != nil {
		return nil, errJWTMalformed
	}
	sig, err := b64.DecodeString(segs[2])
	if err != nil {
		return nil, errJWTMalformed
	}
	t := &jwtToken{signed: segs[0] + "." + segs[1], sig: sig}
	if err := json.Unmarshal(hb, &t.Header); err != nil {
		return nil, errJWTMalformed
	}
	dec := json.NewDecoder(strings.NewReader(string(cb)))
	dec.UseNumber()
	if err := dec.Decode(&t.Claims); err != nil || t.Claims == nil {
		return nil, errJWTMalformed
	}
	return t, nil
}

// verifyHS256 accepts only HS256: alg "none" or an asymmetric alg is refused
// outright so a token cannot pick its own verification method.
func (t *jwtToken) verifyHS256(secret []byte) error {
	if t.Header.Alg != "HS256" {
		return fmt.Errorf("%w: %q", errJWTAlg, t.Header.Alg)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t.signed))
	if !hmac.Equal(m.Sum(nil), t.sig) {
		return errJWTSignature
	}
	return nil
}

func (t *jwtToken) str(claim string) string {
	s, _ := t.Claims[claim].(string)
	return s
}

func (t *jwtToken) num(claim string) (int64, bool) {
	switch v := t.Claims[claim].(type) {
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			f, ferr := v.Float64()
			if ferr != nil {
				return 0, false
			}
			return int64(f), true
		}
		return n, true
	case float64:
		return int64(v), true
	}
	return 0, false
}

// audience reports whether aud (string or array) contains want.
func (t *jwtToken) audience(want string) bool {
	switch v := t.Claims["aud"].(type) {
	case string:
		return v == want
	case []any:
		for _, a := range v {
			if s, _ := a.(string); s == want {
				return true
			}
		}
	}
	return false
}
