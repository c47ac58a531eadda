package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// rowHash is SHA-256 over a domain tag, the row number, the previous row's
// hash and every field, each length-prefixed so that no two different rows
// encode alike (moving text from one field to the next changes the hash).
func rowHash(r Record) []byte {
	h := sha256.New()
	h.Write([]byte("ferry/audit/row/v1\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(r.Seq))
	h.Write(n[:])
	field := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	field(r.PrevHash)
	field([]byte(r.At.UTC().Format(time.RFC3339Nano)))
	for _, s := range []string{r.Actor, r.Role, r.Action, r.Category, r.TenantPseudonym, r.Object, r.Reason, r.Ticket, r.Outcome} {
		field([]byte(s))
	}
	return h.Sum(nil)
}

// Problem is one thing Verify found wrong. Seq is the first row it concerns
// (0 when it concerns a checkpoint or key rather than a row).
type Problem struct {
	Seq  int64
	What string
}

// Report is the result of Verify.
type Report struct {
	Rows        int64       // rows read
	Head        []byte      // hash of the last row read
	Checkpoints int         // checkpoints whose signature verified
	Latest      *Checkpoint // the newest verified checkpoint
	Problems    []Problem   // empty when the trail is intact
	FirstBroken int64       // the first broken row, 0 if none
	Target      string      // where the checkpoints were read
}

// OK reports whether the trail and its checkpoints are intact.
func (r Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) add(seq int64, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Seq: seq, What: fmt.Sprintf(format, args...)})
	if seq > 0 && (r.FirstBroken == 0 || seq < r.FirstBroken) {
		r.FirstBroken = seq
	}
}

// Verify checks the chain row by row and every checkpoint in the target
// against it. It names the first broken row: a changed row (its hash no longer
// matches its contents), a missing row (a gap in the numbers), a row out of
// place (its previous hash is not the hash of the row before), a rewritten
// stretch (the chain is whole but differs from a signed checkpoint) and a
// cut-off tail (a checkpoint counts more rows than the trail has).
func (t *Trail) Verify(ctx context.Context) (Report, error) {
	rep := Report{}
	if t.target == nil {
		return rep, fmt.Errorf("audit: no checkpoint target configured")
	}
	rep.Target = t.target.Describe()
	pubs, err := t.trustedKeys(ctx, &rep)
	if err != nil {
		return rep, err
	}
	cps, err := t.readCheckpoints(ctx, pubs, &rep)
	if err != nil {
		return rep, err
	}
	sort.Slice(cps, func(a, b int) bool { return cps[a].Seq < cps[b].Seq })

	rows, err := t.db.SQL.QueryContext(ctx, `SELECT `+recordCols+` FROM audit_trail ORDER BY seq`)
	if err != nil {
		return rep, fmt.Errorf("audit: read trail: %w", err)
	}
	defer rows.Close()
	prev := genesis
	want := int64(1)
	broken := false
	ci := 0
	lastGood := int64(0) // the last row covered by a checkpoint that matched
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return rep, fmt.Errorf("audit: read row: %w", err)
		}
		rep.Rows++
		if !broken {
			switch {
			case r.Seq != want:
				rep.add(want, "row %d is missing: the trail goes from row %d to row %d", want, want-1, r.Seq)
				broken = true
			case !bytes.Equal(r.PrevHash, prev):
				rep.add(r.Seq, "row %d is out of place: its previous-row hash is not the hash of row %d (rows reordered, or one before it replaced)", r.Seq, r.Seq-1)
				broken = true
			case !bytes.Equal(rowHash(r), r.Hash):
				rep.add(r.Seq, "row %d was changed: its contents no longer match its hash", r.Seq)
				broken = true
			}
		}
		for ci < len(cps) && cps[ci].Seq == r.Seq {
			if !bytes.Equal(cps[ci].Head, r.Hash) {
				rep.add(lastGood+1, "rows %d to %d differ from the checkpoint of %s: the trail was rewritten after it was signed",
					lastGood+1, r.Seq, cps[ci].At.Format(time.RFC3339))
			} else if !broken {
				lastGood = r.Seq
			}
			ci++
		}
		for ci < len(cps) && cps[ci].Seq < r.Seq {
			ci++ // a checkpoint of a row number that is missing: reported as a gap above
		}
		prev, want = r.Hash, r.Seq+1
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	rep.Head = prev
	for ; ci < len(cps); ci++ {
		c := cps[ci]
		rep.add(want, "rows %d to %d are missing: the checkpoint of %s counted %d rows, the trail ends at row %d (its tail was cut off)",
			want, c.Seq, c.At.Format(time.RFC3339), c.Seq, want-1)
		break
	}
	return rep, nil
}
