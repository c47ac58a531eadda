package export

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestSafeBoundsNeverNameTwoInstants: every bound a plan writes, in every
// zone with daylight saving, is a local time that names exactly one
// instant (so JQL reads it as Ferry meant), and moving bounds off the
// changes keeps them in order (so leaves never overlap).
func TestSafeBoundsNeverNameTwoInstants(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	for _, name := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago", "Asia/Tehran", "Australia/Lord_Howe", "UTC"} {
		zone, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 60
		prevRaw, prevSafe := int64(0), int64(0)
		for i := 0; i < 20000; i++ {
			// Walk forward in steps of up to three hours, through every change.
			raw := base + prevRaw + rnd.Int64N(180)
			prevRaw = raw - base
			m := safeMinute(raw, zone)
			if m < raw || m > raw+6*60 {
				t.Fatalf("%s: %d moved to %d", name, raw, m)
			}
			if m < prevSafe {
				t.Fatalf("%s: bounds out of order: %d after %d", name, m, prevSafe)
			}
			prevSafe = m
			s := jqlMinute(m, zone)
			back, err := time.ParseInLocation("2006-01-02 15:04", s, zone)
			if err != nil || back.Unix()/60 != m {
				t.Fatalf("%s: %q reads back as %v, want minute %d", name, s, back, m)
			}
			// No other instant writes as the same local time.
			for _, d := range []time.Duration{-time.Hour, time.Hour, -30 * time.Minute, 30 * time.Minute} {
				if time.Unix(m*60, 0).Add(d).In(zone).Format("2006-01-02 15:04") == s {
					t.Fatalf("%s: %q names two instants", name, s)
				}
			}
		}
	}
}

// TestAPositionFromAnOlderCutIsRefused: a $skiptoken names a leaf of its
// plan by number; a plan cut into leaves by an earlier rule (before leaves
// ended where a search page does) would resume at another leaf, so such a
// position is refused (the client is told to start again), while one chain
// and the current rule resume.
func TestAPositionFromAnOlderCutIsRefused(t *testing.T) {
	sliced := `{"m":"s","s":{"f":"created","d":true,"l":27353347,"h":28911887,"c":[40,41,39],"n":120,"s":200%s},"i":2,"p":"tok"}`
	if _, err := parseCursor(fmt.Sprintf(sliced, "")); err == nil {
		t.Error("a position in a plan of the older cut was accepted")
	}
	c, err := parseCursor(fmt.Sprintf(sliced, `,"k":2`))
	if err != nil || c.Slot != 2 || c.Plan.Cut != planCut {
		t.Errorf("a position in a current plan: %+v, %v", c, err)
	}
	if c, err := parseCursor(`{"m":"s","s":{"n":120},"p":"tok"}`); err != nil || c.PageToken != "tok" {
		t.Errorf("a position on one chain: %+v, %v", c, err)
	}
}
