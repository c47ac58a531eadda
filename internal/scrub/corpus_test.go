package scrub_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"

	"ferry/internal/scrub"
)

// The golden corpus: testdata/corpus.json holds inputs, each marked with the
// rule it is about and whether that rule must change it (positive) or leave
// it alone (negative); testdata/corpus.golden.json holds what the Events
// and Logs profiles make of it, reviewed by hand. go test -run Corpus
// -update rewrites the golden file (review the diff before committing).

var update = flag.Bool("update", false, "rewrite testdata/corpus.golden.json")

type corpus struct {
	Text []struct {
		Rule     string `json:"rule"`
		Positive bool   `json:"positive"`
		In       string `json:"in"`
	} `json:"text"`
	Keys []struct {
		Rule  string `json:"rule"`
		Key   string `json:"key"`
		Match bool   `json:"match"`
	} `json:"keys"`
	Events []struct {
		Rule     string          `json:"rule"`
		Positive bool            `json:"positive"`
		Session  bool            `json:"session"`
		In       json.RawMessage `json:"in"`
	} `json:"events"`
}

type golden struct {
	Text   []goldenText      `json:"text"`
	Events []json.RawMessage `json:"events"`
}

type goldenText struct {
	In     string `json:"in"`
	Events string `json:"events"`
	Logs   string `json:"logs"`
}

// testHasher is a stand-in pseudonym: visible scope, hashed value.
type testHasher struct{}

func (testHasher) Pseudonym(scope, v string) string {
	h := sha256.Sum256([]byte(v))
	return "p(" + scope + ")" + hex.EncodeToString(h[:6])
}

var eventOpts = scrub.EventOptions{Hasher: testHasher{}, TenantTag: "ferry_tenant",
	ValidTenant: func(s string) bool { return strings.HasPrefix(s, "t_") }}

func loadCorpus(t *testing.T) corpus {
	t.Helper()
	b, err := os.ReadFile("testdata/corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("corpus.json: %v", err)
	}
	return c
}

func TestGoldenCorpusCoversEveryRuleBothWays(t *testing.T) {
	c := loadCorpus(t)
	pos, neg := map[string]int{}, map[string]int{}
	for _, x := range c.Text {
		if x.Positive {
			pos[x.Rule]++
		} else {
			neg[x.Rule]++
		}
	}
	for _, x := range c.Keys {
		if x.Match {
			pos[x.Rule]++
		} else {
			neg[x.Rule]++
		}
	}
	for _, x := range c.Events {
		if x.Positive {
			pos[x.Rule]++
		} else {
			neg[x.Rule]++
		}
	}
	for _, r := range scrub.Rules {
		if pos[r.Name] == 0 || neg[r.Name] == 0 {
			t.Errorf("rule %s has %d positive and %d negative corpus cases; want at least one of each", r.Name, pos[r.Name], neg[r.Name])
		}
		delete(pos, r.Name)
		delete(neg, r.Name)
	}
	for name := range pos {
		t.Errorf("corpus names rule %q, which is not in the table", name)
	}
	for name := range neg {
		t.Errorf("corpus names rule %q, which is not in the table", name)
	}
}

func TestGoldenCorpus(t *testing.T) {
	c := loadCorpus(t)
	var got golden
	for _, x := range c.Text {
		r, ok := scrub.Lookup(x.Rule)
		if !ok {
			t.Fatalf("unknown rule %q", x.Rule)
		}
		alone := scrub.Events.ApplyRule(r, x.In)
		if changed := alone != x.In; changed != x.Positive {
			t.Errorf("rule %s on %q: changed=%v, corpus says positive=%v (got %q)", x.Rule, x.In, changed, x.Positive, alone)
		}
		got.Text = append(got.Text, goldenText{In: x.In, Events: scrub.Events.Text(x.In), Logs: scrub.Logs.Text(x.In)})
	}
	for _, x := range c.Keys {
		r, ok := scrub.Events.KeyMatch(x.Key)
		if ok != x.Match || ok && r.Name != x.Rule {
			t.Errorf("key %q: matched rule %q (%v), corpus says %s match=%v", x.Key, r.Name, ok, x.Rule, x.Match)
		}
	}
	for i, x := range c.Events {
		var out any
		var err error
		if x.Session {
			out, err = scrub.Session(x.In, eventOpts)
		} else {
			out, err = scrub.Event(x.In, eventOpts)
		}
		if err != nil {
			t.Fatalf("event case %d (%s): %v", i, x.Rule, err)
		}
		b, _ := json.Marshal(out)
		got.Events = append(got.Events, b)
		// Positive: the rule's part is gone or changed. Checked by the
		// golden comparison below; here, that nothing of the input's
		// personal data survives in any case.
		for _, planted := range []string{"ada@example.org", "hunter2", "203.0.113.9", "Ada Lovelace", "4111111111111111",
			"4111 1111 1111 1111", "5b10ac8d82e05b22cc7d4ef5", "f58131cb-b67d-43c7-b30d-6b58d40bd077", "adas-laptop", "Europe/Berlin", "JSESSIONID", "jwt=abc"} {
			if bytes.Contains(b, []byte(planted)) {
				t.Errorf("event case %d (%s) keeps %q: %s", i, x.Rule, planted, b)
			}
		}
	}
	want, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile("testdata/corpus.golden.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile("testdata/corpus.golden.json")
	if err != nil {
		t.Fatalf("%v (run go test -run Corpus -update and review the file)", err)
	}
	var hg golden
	if err := json.Unmarshal(have, &hg); err != nil {
		t.Fatal(err)
	}
	if len(hg.Text) != len(got.Text) || len(hg.Events) != len(got.Events) {
		t.Fatalf("golden file has %d text and %d event cases, corpus %d and %d: run -update and review", len(hg.Text), len(hg.Events), len(got.Text), len(got.Events))
	}
	for i := range got.Text {
		if hg.Text[i] != got.Text[i] {
			t.Errorf("text case %d:\n got  %+v\n want %+v", i, got.Text[i], hg.Text[i])
		}
	}
	for i := range got.Events {
		if !jsonEqual(hg.Events[i], got.Events[i]) {
			t.Errorf("event case %d (%s):\n got  %s\n want %s", i, c.Events[i].Rule, got.Events[i], hg.Events[i])
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
