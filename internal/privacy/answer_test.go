package privacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestParseAnswerKeepsOnlyWhatWasAsked: generated answers mixing asked and
// unasked accounts, known and unknown statuses, repeats and case; the
// result is computed independently from the same inputs.
func TestParseAnswerKeepsOnlyWhatWasAsked(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	statuses := []string{"closed", "updated", "CLOSED", "Updated", "deleted", "", "closed "}
	for round := 0; round < 300; round++ {
		asked := map[string]bool{}
		for i := 0; i < rng.IntN(90)+1; i++ {
			asked[fmt.Sprintf("557058:%04d", rng.IntN(200))] = true
		}
		type item struct {
			AccountID string `json:"accountId"`
			Status    string `json:"status"`
		}
		var items []item
		want := map[string]Status{}
		wantIgnored := 0
		for i := 0; i < rng.IntN(120); i++ {
			id := fmt.Sprintf("557058:%04d", rng.IntN(200))
			st := statuses[rng.IntN(len(statuses))]
			items = append(items, item{id, st})
			norm := Status(strings.ToLower(st))
			if _, dup := want[id]; !asked[id] || dup || (norm != StatusClosed && norm != StatusUpdated) {
				wantIgnored++
				continue
			}
			want[id] = norm
		}
		body, _ := json.Marshal(map[string]any{"accounts": items})
		got, ignored, err := parseAnswer(body, asked)
		if err != nil {
			t.Fatal(err)
		}
		if ignored != wantIgnored || len(got) != len(want) {
			t.Fatalf("round %d: %d answers %d ignored, want %d and %d", round, len(got), ignored, len(want), wantIgnored)
		}
		for _, a := range got {
			if want[a.AccountID] != a.Status {
				t.Fatalf("round %d: %s → %s, want %s", round, a.AccountID, a.Status, want[a.AccountID])
			}
		}
	}
	for _, bad := range []string{``, `[`, `{"accounts": 5}`, `{"accounts": [{"accountId": 1}]}`, strings.Repeat(" ", maxAnswerBody+1) + "{}"} {
		if _, _, err := parseAnswer([]byte(bad), nil); !errors.Is(err, ErrAnswer) {
			t.Errorf("%.20q: %v, want ErrAnswer", bad, err)
		}
	}
}

func TestParseCyclePeriod(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"604800", 7 * 24 * time.Hour, true}, {"3600", time.Hour, true}, {" 7200 ", 2 * time.Hour, true},
		{"60", time.Hour, true}, // never more often than hourly
		{"99999999999999", 30 * 24 * time.Hour, true}, {"P7D", 7 * 24 * time.Hour, true}, {"pt12h", 12 * time.Hour, true},
		{"PT90M", 90 * time.Minute, true}, {"PT30S", time.Hour, true}, {"P40D", 30 * 24 * time.Hour, true},
		{"", 0, false}, {"0", 0, false}, {"-5", 0, false}, {"7d", 0, false}, {"P", 0, false}, {"PTH", 0, false},
		{"P1W", 0, false}, {"1.5", 0, false},
	} {
		got, ok := parseCyclePeriod(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"30", 30 * time.Second}, {"0", 0}, {"", time.Minute}, {"soon", time.Minute}, {"-3", time.Minute},
		{"999999999", 24 * time.Hour}, {now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(c.in, now); got != c.want {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
	}
}

// The parsers read what Atlassian's API sends: they must never panic, and
// must keep their bounds whatever arrives.
func FuzzParseAnswer(f *testing.F) {
	f.Add([]byte(`{"accounts":[{"accountId":"a","status":"closed"},{"accountId":"b","status":"updated"}]}`), "a")
	f.Add([]byte(`{"accounts":[]}`), "")
	f.Add([]byte(`{"accounts":[{"accountId":"a","status":"closed"},{"accountId":"a","status":"updated"}]}`), "a")
	f.Add([]byte(`null`), "x")
	f.Fuzz(func(t *testing.T, body []byte, asked string) {
		set := map[string]bool{asked: true}
		got, ignored, err := parseAnswer(body, set)
		if err != nil {
			return
		}
		if ignored < 0 || len(got) > 1 {
			t.Fatalf("%d answers, %d ignored, for one asked account", len(got), ignored)
		}
		for _, a := range got {
			if a.AccountID != asked || (a.Status != StatusClosed && a.Status != StatusUpdated) {
				t.Fatalf("answer %+v", a)
			}
		}
	})
}

func FuzzParseCyclePeriod(f *testing.F) {
	for _, s := range []string{"604800", "P7D", "PT1H", "", "-1", "9223372036854775807", "P9223372036854775807D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseCyclePeriod(s)
		if ok && (d < minCyclePeriod || d > maxCyclePeriod) {
			t.Fatalf("%q → %v out of bounds", s, d)
		}
		r := parseRetryAfter(s, time.Unix(1700000000, 0))
		if r < 0 || r > maxRetryAfter {
			t.Fatalf("Retry-After %q → %v out of bounds", s, r)
		}
	})
}
