package forge

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// Forge signs FITs with RS256 keys it publishes as a JWKS
// (FERRY_FORGE_JWKS_URL). Ferry keeps the keys by kid. The kid comes from a
// token nobody has verified yet, so anyone can make Ferry look for a kid:
// an unknown kid refreshes the whole set at most once a minute, across all
// kids and callers (one fetch at a time; concurrent callers wait for it), so
// a flood of made-up kids costs Atlassian one request a minute and a
// genuinely new key (Atlassian rotated) is found within a minute. Keys are
// re-read hourly on use, so a key Atlassian withdrew stops verifying.

// Doer sends HTTP requests: the egress gate's clients.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

const (
	unknownKidRefresh = time.Minute      // at most one fetch for unknown kids per minute, globally
	keysMaxAge        = time.Hour        // after this a key set is re-read on use
	keysStaleLimit    = 24 * time.Hour   // a set older than this is not used when Atlassian cannot be reached
	jwksFetchTimeout  = 10 * time.Second // one fetch
	maxJWKSBody       = 64 << 10
	maxJWKSKeys       = 64
	minRSABits        = 2048
)

// errKeysUnavailable: the JWKS could not be fetched (Forge retries events;
// the request is answered 503).
var errKeysUnavailable = errors.New("forge: the FIT key set could not be fetched")

// refreshLater: a kid is unknown and the key set was fetched less than a
// minute ago; after says when the next fetch may happen.
type refreshLater struct{ after time.Duration }

func (e *refreshLater) Error() string {
	return fmt.Sprintf("forge: unknown FIT key id; the key set is read again in %v", e.after.Round(time.Second))
}

type jwks struct {
	url    string
	client Doer
	now    func() time.Time

	mu          sync.Mutex
	keys        map[string]*rsa.PublicKey
	fetched     time.Time // last successful fetch
	attempted   time.Time // last fetch attempt, successful or not
	inflight    chan struct{}
	fetchCount  int // fetches made, for tests and the benchmark
	lastFetchOK bool
}

func newJWKS(url string, client Doer, now func() time.Time) *jwks {
	return &jwks{url: url, client: client, now: now, keys: map[string]*rsa.PublicKey{}}
}

// key returns the public key named kid.
func (k *jwks) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	for {
		k.mu.Lock()
		now := k.now()
		pub, known := k.keys[kid]
		fresh := !k.fetched.IsZero() && now.Sub(k.fetched) < keysMaxAge
		if known && fresh {
			k.mu.Unlock()
			return pub, nil
		}
		if ch := k.inflight; ch != nil {
			k.mu.Unlock()
			select {
			case <-ch:
				continue // look again at what the fetch brought
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %v", errKeysUnavailable, ctx.Err())
			}
		}
		since := now.Sub(k.attempted)
		mayFetch := k.attempted.IsZero() || since >= unknownKidRefresh || (known && !fresh)
		if !mayFetch {
			k.mu.Unlock()
			return nil, &refreshLater{after: unknownKidRefresh - since}
		}
		if known && !fresh && since < unknownKidRefresh {
			// A stale set whose refresh failed a moment ago: keep using it
			// for a while rather than refuse Atlassian's own tokens.
			if now.Sub(k.fetched) < keysStaleLimit {
				k.mu.Unlock()
				return pub, nil
			}
		}
		ch := make(chan struct{})
		k.inflight, k.attempted = ch, now
		k.mu.Unlock()

		// The fetch serves everyone waiting for it, so one caller hanging up
		// must not cancel it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
		keys, err := k.fetch(fctx)
		cancel()

		k.mu.Lock()
		k.inflight = nil
		k.fetchCount++
		k.lastFetchOK = err == nil
		if err == nil {
			k.keys, k.fetched = keys, k.now()
		}
		pub, known = k.keys[kid]
		stillUsable := known && k.now().Sub(k.fetched) < keysStaleLimit
		k.mu.Unlock()
		close(ch)
		switch {
		case err == nil && known:
			return pub, nil
		case err == nil:
			return nil, ErrUnknownKeyID
		case stillUsable:
			return pub, nil
		}
		return nil, err
	}
}

// fetches reports how many times the key set was fetched.
func (k *jwks) fetches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetchCount
}

func (k *jwks) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != req.URL.Host {
		return nil, fmt.Errorf("%w: redirected to another host", errKeysUnavailable)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", errKeysUnavailable, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("%w: larger than %d bytes", errKeysUnavailable, maxJWKSBody)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	return keys, nil
}

// ParseJWKS reads a JSON Web Key Set and keeps its RSA signing keys of at
// least 2048 bits that may sign RS256, by kid. Keys of other types, or
// marked for another use or algorithm, are skipped; a set with no usable
// key is an error.
func ParseJWKS(b []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %v", err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || !validKid(k.Kid) || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		nb, err := base64.RawURLEncoding.DecodeString(k.N)
		if err != nil || len(nb) == 0 || nb[0] == 0 {
			continue
		}
		eb, err := base64.RawURLEncoding.DecodeString(k.E)
		if err != nil || len(eb) == 0 || len(eb) > 4 {
			continue
		}
		n := new(big.Int).SetBytes(nb)
		e := new(big.Int).SetBytes(eb)
		if n.BitLen() < minRSABits || n.BitLen() > 8192 || e.Int64() < 3 || e.Int64()%2 == 0 {
			continue
		}
		if _, dup := out[k.Kid]; dup || len(out) >= maxJWKSKeys {
			continue
		}
		out[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
	}
	if len(out) == 0 {
		return nil, errors.New("the key set holds no RSA signing key of at least 2048 bits")
	}
	return out, nil
}

// validKid keeps a kid short and of plain characters: it is looked up in a
// map, never put in a URL, but it reaches logs as a length at most.
func validKid(kid string) bool {
	if kid == "" || len(kid) > 128 {
		return false
	}
	for _, c := range kid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=') {
			return false
		}
	}
	return true
}
