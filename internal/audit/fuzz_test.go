package audit_test

import (
	"bytes"
	"testing"
	"time"

	"ferry/internal/audit"
)

// FuzzParseCheckpoint: a checkpoint file comes from outside the database and
// may have been tampered with; the parser must never panic and whatever it
// accepts must encode back to the same checkpoint.
func FuzzParseCheckpoint(f *testing.F) {
	good := audit.Checkpoint{Seq: 42, Head: bytes.Repeat([]byte{0xab}, 32), At: time.Date(2026, 3, 1, 9, 0, 0, 1000, time.UTC),
		KeyID: "0011223344556677", Sig: bytes.Repeat([]byte{1}, 64)}
	f.Add(good.Marshal())
	f.Add([]byte(`{"version":1,"seq":0}`))
	f.Add([]byte(`{"version":2,"seq":1,"head":"00","at":"x","key_id":"k","signature":""}`))
	f.Add([]byte(`{"version":1,"seq":1,"head":"` + string(bytes.Repeat([]byte("0"), 64)) + `","at":"2026-01-01T00:00:00Z","key_id":"k","signature":"AA==","extra":1}`))
	f.Add([]byte("not json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := audit.ParseCheckpoint(b)
		if err != nil {
			return
		}
		again, err := audit.ParseCheckpoint(c.Marshal())
		if err != nil || again.Seq != c.Seq || !bytes.Equal(again.Head, c.Head) || !again.At.Equal(c.At) || again.KeyID != c.KeyID || !bytes.Equal(again.Sig, c.Sig) {
			t.Fatalf("round trip: %+v → %+v (%v)", c, again, err)
		}
	})
}
