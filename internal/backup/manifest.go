package backup

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Manifest describes one backup: what it holds and how to check it. It is
// written last, signed, so a backup exists (is listed) only once every
// object it names is complete; its size and SHA-256 of each object are what
// a restore checks before it trusts a byte.
type Manifest struct {
	Format        string           `json:"format"` // ferry-backup/1
	ID            string           `json:"id"`
	CreatedAt     time.Time        `json:"created_at"`
	FerryVersion  string           `json:"ferry_version"`
	Dialect       string           `json:"dialect"`        // sqlite | postgres
	SchemaVersion int64            `json:"schema_version"` // goose version of the snapshot
	KeyID         string           `json:"key_id"`         // backup key that signed this
	Recipients    []string         `json:"recipients"`     // age recipients the objects are encrypted to
	Data          Part             `json:"data"`
	Keys          Part             `json:"keys"`
	Tables        map[string]int64 `json:"tables"`     // rows per table in Data (key tables: 0, see Keys)
	KeyTables     map[string]int64 `json:"key_tables"` // rows per table in Keys
}

// Part is one encrypted object of a backup.
type Part struct {
	Name       string `json:"name"`
	Format     string `json:"format"` // ferry-dump/1 | pg_dump-custom
	Size       int64  `json:"size"`   // bytes stored (ciphertext)
	SHA256     string `json:"sha256"` // of the stored bytes
	PlainBytes int64  `json:"plain_bytes"`
}

// DrillResult is the outcome of restoring a backup into a scratch database
// and checking it.
type DrillResult struct {
	Format   string    `json:"format"` // ferry-backup-drill/1
	ID       string    `json:"id"`     // the backup drilled
	At       time.Time `json:"at"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Checks   []Check   `json:"checks"`
	KeysFrom string    `json:"keys_from"` // backup whose key object was restored with it
	Millis   int64     `json:"millis"`
}

// Check is one integrity check of a drill.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// envelope is a signed object: the payload's exact bytes are signed, so
// verification needs no canonical JSON.
type envelope struct {
	Type      string `json:"type"` // manifest | drill
	KeyID     string `json:"key_id"`
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// ErrSignature: a manifest or drill record is not signed by a backup key
// this KEK can open.
var ErrSignature = errors.New("backup: bad signature")

// signedMessage separates the signature domains of manifests and drill
// records, so one can never be passed off as the other.
func signedMessage(typ string, payload []byte) []byte {
	return append([]byte("ferry-backup-signed/1\x00"+typ+"\x00"), payload...)
}

func seal(k *backupKey, typ string, v any) ([]byte, error) {
	p, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(k.Signer, signedMessage(typ, p))
	return json.MarshalIndent(envelope{Type: typ, KeyID: k.ID, Payload: p, Signature: sig}, "", "  ")
}

// openEnvelope checks the signature with the public key of the named backup
// key and decodes the payload strictly into v.
func openEnvelope(b []byte, typ string, pub func(keyID string) (ed25519.PublicKey, error), v any) (keyID string, err error) {
	var e envelope
	if err := strictJSON(b, &e); err != nil {
		return "", fmt.Errorf("%w: not a signed record", ErrSignature)
	}
	if e.Type != typ {
		return "", fmt.Errorf("%w: a %q record where a %q was expected", ErrSignature, e.Type, typ)
	}
	if e.KeyID == "" || len(e.Signature) != ed25519.SignatureSize {
		return "", fmt.Errorf("%w: no key or signature", ErrSignature)
	}
	pk, err := pub(e.KeyID)
	if err != nil {
		return e.KeyID, fmt.Errorf("%w: key %s: %v", ErrSignature, e.KeyID, err)
	}
	if !ed25519.Verify(pk, signedMessage(typ, e.Payload), e.Signature) {
		return e.KeyID, fmt.Errorf("%w: signature does not verify", ErrSignature)
	}
	if err := strictJSON(e.Payload, v); err != nil {
		return e.KeyID, fmt.Errorf("%w: signed payload does not decode: %v", ErrSignature, err)
	}
	return e.KeyID, nil
}

// validate checks a verified manifest for the fields a restore relies on.
func (m *Manifest) validate(wantID string) error {
	switch {
	case m.Format != "ferry-backup/1":
		return fmt.Errorf("manifest format %q", m.Format)
	case m.ID != wantID:
		return fmt.Errorf("manifest of %q stored as %q", m.ID, wantID)
	case m.Dialect != "sqlite" && m.Dialect != "postgres":
		return fmt.Errorf("manifest dialect %q", m.Dialect)
	case m.Data.Name != dataObject(m.ID, m.Dialect) || m.Keys.Name != keysObject(m.ID):
		return errors.New("manifest names objects of another backup")
	case len(m.Data.SHA256) != 64 || len(m.Keys.SHA256) != 64 || m.Data.Size <= 0 || m.Keys.Size <= 0:
		return errors.New("manifest lacks sizes or digests")
	}
	return nil
}

func manifestObject(id string) string { return "manifests/" + id + ".json" }
func drillObject(id string) string    { return "drills/" + id + ".json" }
func keysObject(id string) string     { return "keys/" + id + ".ferrydump.age" }
func dataObject(id, dialect string) string {
	if dialect == "postgres" {
		return "data/" + id + ".pgdump.age"
	}
	return "data/" + id + ".ferrydump.age"
}

// Size writes a byte count as people read it (B, KB, MB, GB; powers of
// 1024): the size of a backup on the console and in `ferry backup`.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
