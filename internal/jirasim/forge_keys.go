package jirasim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"math/big"
	"net/http"
	"slices"
	"sync"
)

// Forge signs FITs with RS256 keys published as a JWKS, each with a kid.
// The sim keeps its own JWKS per site and rotates on demand: a new key
// signs from then on while the old one stays published until retired, so a
// remote that caches keys by kid must fetch the JWKS again on an unknown kid.

const forgeJWKSPath = "/forge/.well-known/jwks.json"

type forgeKey struct {
	priv *rsa.PrivateKey
	kid  string
}

// RSA key generation is slow under -race and tests build many sims, so keys
// come from a process-wide pool: sim n's k-th key is pool key k. Sims share
// keys the way every Forge app shares Atlassian's keys.
var forgeKeyPool struct {
	mu   sync.Mutex
	keys []*forgeKey
}

func poolKey(i int) *forgeKey {
	forgeKeyPool.mu.Lock()
	defer forgeKeyPool.mu.Unlock()
	for len(forgeKeyPool.keys) <= i {
		forgeKeyPool.keys = append(forgeKeyPool.keys, newForgeKey())
	}
	return forgeKeyPool.keys[i]
}

// strangerKey signs tokens whose kid no JWKS publishes.
var strangerKey = sync.OnceValue(newForgeKey)

func newForgeKey() *forgeKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(der)
	return &forgeKey{priv: priv, kid: "jirasim-forge-" + hex.EncodeToString(sum[:10])}
}

// forgeKeyring is one site's view: which pool keys are published and which signs.
type forgeKeyring struct {
	published []int // pool indexes in the JWKS, oldest first
	current   int
	next      int
}

func (k *forgeKeyring) init() { k.published, k.current, k.next = []int{0}, 0, 1 }

func (k *forgeKeyring) signer() *forgeKey { return poolKey(k.current) }

// RotateForgeKeys publishes a new signing key and keeps the old ones in the
// JWKS until RetireForgeKeys; it returns the new kid.
func (s *Sim) RotateForgeKeys() string {
	f := s.forge
	f.mu.Lock()
	i := f.keys.next
	f.keys.next++
	f.keys.published = append(f.keys.published, i)
	f.keys.current = i
	f.mu.Unlock()
	return poolKey(i).kid
}

// RetireForgeKeys removes every key but the current one from the JWKS:
// tokens signed before the last rotation stop verifying.
func (s *Sim) RetireForgeKeys() {
	f := s.forge
	f.mu.Lock()
	f.keys.published = []int{f.keys.current}
	f.mu.Unlock()
}

// ForgeKeyIDs lists the kids in the JWKS, oldest first; the last one signs.
func (s *Sim) ForgeKeyIDs() []string {
	f := s.forge
	f.mu.Lock()
	idx := slices.Clone(f.keys.published)
	f.mu.Unlock()
	out := make([]string, len(idx))
	for n, i := range idx {
		out[n] = poolKey(i).kid
	}
	return out
}

type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (s *Sim) handleForgeJWKS(w http.ResponseWriter, r *http.Request) {
	f := s.forge
	f.mu.Lock()
	idx := slices.Clone(f.keys.published)
	f.mu.Unlock()
	out := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, i := range idx {
		k := poolKey(i)
		out.Keys = append(out.Keys, jwk{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: k.kid,
			N: b64.EncodeToString(k.priv.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes())})
	}
	w.Header().Set("Cache-Control", "max-age=300")
	writeJSON(w, http.StatusOK, out)
}
