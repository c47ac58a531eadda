package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// Target is where checkpoints are kept, outside the database, so that whoever
// can rewrite the database cannot also rewrite what it is checked against.
// DirTarget is a directory; a backup target can implement the same four
// methods.
type Target interface {
	// Write stores data under name. An existing name is left as it is.
	Write(ctx context.Context, name string, data []byte) error
	// List returns the names stored, in any order.
	List(ctx context.Context) ([]string, error)
	Read(ctx context.Context, name string) ([]byte, error)
	// Describe says where the target is, without secrets.
	Describe() string
}

// DirTarget keeps checkpoints as files in a directory (FERRY_AUDIT_CHECKPOINT_DIR).
type DirTarget struct{ Dir string }

var _ Target = DirTarget{}

func (d DirTarget) Describe() string { return "directory " + d.Dir }

// Write writes atomically (temp file, then rename) with mode 0600, and never
// replaces an existing file.
func (d DirTarget) Write(_ context.Context, name string, data []byte) error {
	if !validName(name) {
		return fmt.Errorf("audit: bad checkpoint name %q", name)
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("audit: checkpoint directory: %w", err)
	}
	path := filepath.Join(d.Dir, name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(d.Dir, ".tmp-"+name+"-*")
	if err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link, not rename: link fails if the name exists, so a checkpoint
	// written concurrently by another replica is never replaced.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	return nil
}

func (d DirTarget) List(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: list checkpoints: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && validName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (d DirTarget) Read(_ context.Context, name string) ([]byte, error) {
	if !validName(name) {
		return nil, fmt.Errorf("audit: bad checkpoint name %q", name)
	}
	return os.ReadFile(filepath.Join(d.Dir, name))
}

const (
	checkpointPrefix = "audit-checkpoint-"
	keyPrefix        = "audit-key-"
)

// IsCheckpointName reports whether n is a name the trail writes to a
// Target (a checkpoint or a signing key's public half): the only names a
// Target needs to hold.
func IsCheckpointName(n string) bool { return validName(n) }

func validName(n string) bool {
	if !(strings.HasPrefix(n, checkpointPrefix) && strings.HasSuffix(n, ".json")) && !(strings.HasPrefix(n, keyPrefix) && strings.HasSuffix(n, ".pub")) {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.Contains(n, "..")
}

// Checkpoint is a signed statement of the trail's head at a time.
type Checkpoint struct {
	Seq   int64     // rows in the trail (the head row's number)
	Head  []byte    // the head row's hash
	At    time.Time // when it was signed
	KeyID string
	Sig   []byte
}

type checkpointJSON struct {
	Version   int    `json:"version"`
	Seq       int64  `json:"seq"`
	Head      string `json:"head"`
	At        string `json:"at"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// signedBytes is what the signature covers; the domain tag keeps a checkpoint
// signature from being valid as anything else.
func (c Checkpoint) signedBytes() []byte {
	return []byte("ferry/audit/checkpoint/v1\n" + strconv.FormatInt(c.Seq, 10) + "\n" + hex.EncodeToString(c.Head) + "\n" +
		c.At.UTC().Format(time.RFC3339Nano) + "\n" + c.KeyID + "\n")
}

func (c Checkpoint) name() string { return fmt.Sprintf("%s%020d.json", checkpointPrefix, c.Seq) }

// Marshal encodes a checkpoint as stored in the target.
func (c Checkpoint) Marshal() []byte {
	b, _ := json.MarshalIndent(checkpointJSON{Version: 1, Seq: c.Seq, Head: hex.EncodeToString(c.Head),
		At: c.At.UTC().Format(time.RFC3339Nano), KeyID: c.KeyID, Signature: base64.StdEncoding.EncodeToString(c.Sig)}, "", "  ")
	return append(b, '\n')
}

// ParseCheckpoint decodes a stored checkpoint; it does not check the
// signature. It is the parser of a file from outside the database.
func ParseCheckpoint(b []byte) (Checkpoint, error) {
	var j checkpointJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
	}
	if j.Version != 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint version %d is not 1", j.Version)
	}
	if j.Seq < 1 {
		return Checkpoint{}, fmt.Errorf("checkpoint row count %d is not positive", j.Seq)
	}
	head, err := hex.DecodeString(j.Head)
	if err != nil || len(head) != sha256.Size {
		return Checkpoint{}, errors.New("checkpoint head is not a hex SHA-256")
	}
	at, err := time.Parse(time.RFC3339Nano, j.At)
	if err != nil {
		return Checkpoint{}, errors.New("checkpoint time is not RFC 3339")
	}
	sig, err := base64.StdEncoding.DecodeString(j.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Checkpoint{}, errors.New("checkpoint signature is not a base64 Ed25519 signature")
	}
	if j.KeyID == "" || len(j.KeyID) > 64 {
		return Checkpoint{}, errors.New("checkpoint has no key id")
	}
	return Checkpoint{Seq: j.Seq, Head: head, At: at.UTC(), KeyID: j.KeyID, Sig: sig}, nil
}

// publicKeyFile is a signing key's public half as stored in the target.
func publicKeyFile(pk ed25519.PublicKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(pk) + "\n")
}

// keyAD binds a wrapped signing key to its id.
func keyAD(id string) []byte { return []byte("ferry/audit-signing-key\x00" + id) }

func keyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// signer returns the newest signing key, creating one on first use.
func (t *Trail) signer(ctx context.Context) (string, ed25519.PrivateKey, error) {
	for attempt := 0; attempt < 2; attempt++ {
		var id string
		var pub, wrapped []byte
		err := t.db.SQL.QueryRowContext(ctx, `SELECT id, public_key, private_wrapped FROM audit_keys ORDER BY created_at DESC, id LIMIT 1`).Scan(&id, &pub, &wrapped)
		if err == nil {
			priv, err := t.unwrapKey(id, pub, wrapped)
			return id, priv, err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("audit: signing key: %w", err)
		}
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", nil, err
		}
		id = keyID(pk)
		w, err := t.ring.KEK().Encrypt(sk.Seed(), keyAD(id))
		if err != nil {
			return "", nil, fmt.Errorf("audit: wrap signing key: %w", err)
		}
		if err := t.db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO audit_keys (id, public_key, private_wrapped, created_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (id) DO NOTHING`, id, []byte(pk), w, tx.Now())
			return err
		}); err != nil {
			return "", nil, fmt.Errorf("audit: store signing key: %w", err)
		}
		// The public key goes to the target too, for whoever checks the
		// checkpoints without Ferry.
		if err := t.target.Write(ctx, keyPrefix+id+".pub", publicKeyFile(pk)); err != nil {
			return "", nil, err
		}
	}
	return "", nil, errors.New("audit: no signing key")
}

// unwrapKey opens a wrapped signing key and checks it against the stored
// public key.
func (t *Trail) unwrapKey(id string, pub, wrapped []byte) (ed25519.PrivateKey, error) {
	seed, err := t.ring.KEK().Decrypt(wrapped, keyAD(id))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: signing key %s cannot be unwrapped with the KEK", id)
	}
	sk := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(sk.Public().(ed25519.PublicKey), pub) || keyID(pub) != id {
		return nil, fmt.Errorf("audit: signing key %s does not match its public key", id)
	}
	return sk, nil
}

// trustedKeys returns the public keys whose private halves the KEK unwraps:
// a key row someone added without the KEK is not trusted.
func (t *Trail) trustedKeys(ctx context.Context, rep *Report) (map[string]ed25519.PublicKey, error) {
	rows, err := t.db.SQL.QueryContext(ctx, `SELECT id, public_key, private_wrapped FROM audit_keys`)
	if err != nil {
		return nil, fmt.Errorf("audit: read signing keys: %w", err)
	}
	defer rows.Close()
	out := map[string]ed25519.PublicKey{}
	for rows.Next() {
		var id string
		var pub, w []byte
		if err := rows.Scan(&id, &pub, &w); err != nil {
			return nil, err
		}
		if _, err := t.unwrapKey(id, pub, w); err != nil {
			rep.add(0, "%v: checkpoints signed with it are not trusted", err)
			continue
		}
		out[id] = ed25519.PublicKey(pub)
	}
	return out, rows.Err()
}

// readCheckpoints reads every checkpoint in the target and keeps those whose
// signature verifies; the others are problems.
func (t *Trail) readCheckpoints(ctx context.Context, pubs map[string]ed25519.PublicKey, rep *Report) ([]Checkpoint, error) {
	names, err := t.target.List(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Checkpoint
	for _, n := range names {
		if !strings.HasPrefix(n, checkpointPrefix) {
			continue
		}
		b, err := t.target.Read(ctx, n)
		if err != nil {
			return nil, err
		}
		c, err := ParseCheckpoint(b)
		if err != nil {
			rep.add(0, "checkpoint %s: %v", n, err)
			continue
		}
		pub, ok := pubs[c.KeyID]
		if !ok {
			rep.add(0, "checkpoint %s is signed with key %s, which is not a trusted audit key", n, c.KeyID)
			continue
		}
		if !ed25519.Verify(pub, c.signedBytes(), c.Sig) {
			rep.add(0, "checkpoint %s: the signature does not verify (the file was altered)", n)
			continue
		}
		if n != c.name() {
			rep.add(0, "checkpoint %s is stored under the wrong name (it is for row %d)", n, c.Seq)
			continue
		}
		out = append(out, c)
		rep.Checkpoints++
		if rep.Latest == nil || c.Seq > rep.Latest.Seq {
			cc := c
			rep.Latest = &cc
		}
	}
	return out, nil
}

// ErrBroken: the trail does not verify, so no checkpoint is signed: a
// checkpoint must never vouch for a chain someone has already broken.
var ErrBroken = errors.New("audit: the trail does not verify")

// Checkpoint verifies the trail, then signs its head and writes it to the
// target, unless the newest checkpoint there already covers it (written is
// false then).
func (t *Trail) Checkpoint(ctx context.Context) (c Checkpoint, written bool, err error) {
	if t.target == nil {
		return c, false, errors.New("audit: no checkpoint target configured")
	}
	rep, err := t.Verify(ctx)
	if err != nil {
		return c, false, err
	}
	if !rep.OK() {
		return c, false, fmt.Errorf("%w (first broken row %d: %s); no checkpoint signed", ErrBroken, rep.FirstBroken, rep.Problems[0].What)
	}
	seq, head, err := t.Head(ctx)
	if err != nil || seq == 0 {
		return c, false, err
	}
	names, err := t.target.List(ctx)
	if err != nil {
		return c, false, err
	}
	c = Checkpoint{Seq: seq, Head: head}
	for _, n := range names {
		if n == c.name() {
			return c, false, nil
		}
	}
	id, sk, err := t.signer(ctx)
	if err != nil {
		return c, false, err
	}
	// Its public key beside it, also in a target configured after the key
	// was made (a target keeps a name it already holds).
	if err := t.target.Write(ctx, keyPrefix+id+".pub", publicKeyFile(sk.Public().(ed25519.PublicKey))); err != nil {
		return c, false, err
	}
	c.At, c.KeyID = t.db.Now().Truncate(time.Microsecond), id
	c.Sig = ed25519.Sign(sk, c.signedBytes())
	if err := t.target.Write(ctx, c.name(), c.Marshal()); err != nil {
		return c, false, err
	}
	return c, true, nil
}

var _ keys.Wrapped = (*Trail)(nil)

// RewrapKEK seals again, with kek, every signing key not under its primary
// version: KEK rotation and retirement call it (keys.Wrapped), so
// checkpoints stay verifiable after the old version is gone.
func (t *Trail) RewrapKEK(ctx context.Context, kek keys.KEK) (int, error) {
	n := 0
	err := t.db.InTx(ctx, func(tx *store.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, private_wrapped FROM audit_keys`)
		if err != nil {
			return err
		}
		type kw struct {
			id string
			w  []byte
		}
		var all []kw
		for rows.Next() {
			var k kw
			if err := rows.Scan(&k.id, &k.w); err != nil {
				rows.Close()
				return err
			}
			all = append(all, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, k := range all {
			seed, err := kek.Decrypt(k.w, keyAD(k.id))
			if err != nil {
				return fmt.Errorf("audit: signing key %s cannot be unwrapped with the KEK", k.id)
			}
			w, err := kek.Encrypt(seed, keyAD(k.id))
			if err != nil {
				return err
			}
			before, _ := keys.KEKVersionOf(k.w)
			if after, _ := keys.KEKVersionOf(w); after == before {
				continue // already under the primary
			}
			if _, err := tx.ExecContext(ctx, `UPDATE audit_keys SET private_wrapped = $2 WHERE id = $1`, k.id, w); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// UnderKEKVersion counts the signing keys sealed under KEK version v (0:
// sealed before KEK versions), so retirement waits for them.
func (t *Trail) UnderKEKVersion(ctx context.Context, v int64) (int, error) {
	return countUnder(ctx, t.db, `SELECT private_wrapped FROM audit_keys`, v)
}

// countUnder counts the ciphertexts a query returns that KEK version v sealed.
func countUnder(ctx context.Context, db *store.DB, q string, v int64) (int, error) {
	rows, err := db.SQL.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var ct []byte
		if err := rows.Scan(&ct); err != nil {
			return 0, err
		}
		if ct == nil {
			continue
		}
		if got, ok := keys.KEKVersionOf(ct); (ok && got == v) || (!ok && v == 0) {
			n++
		}
	}
	return n, rows.Err()
}

// CheckpointEvery is how often the checkpoint job runs: a cut-off tail
// younger than this is what a checkpoint cannot catch.
const CheckpointEvery = 5 * time.Minute

// CheckpointJob is `audit.checkpoint`: sign and write the head when it moved.
func CheckpointJob(t *Trail) jobs.Job {
	return jobs.Job{Name: "audit.checkpoint", Every: CheckpointEvery,
		Doc: "sign the audit trail's head and write the checkpoint outside the database",
		Run: func(ctx context.Context) error {
			c, written, err := t.Checkpoint(ctx)
			if err == nil && written {
				t.log.Info("audit checkpoint written", "rows", c.Seq, "target", t.target.Describe())
			}
			return err
		}}
}
