package errortrack_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"ferry/internal/errortrack"
)

func TestParseEnvelopeWithAndWithoutLength(t *testing.T) {
	event := `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"two\nlines"}`
	cases := []struct {
		name string
		in   string
		want []errortrack.EnvelopeItem
	}{
		{"length, payload holds a newline", `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" +
			fmt.Sprintf(`{"type":"event","length":%d}`, len(event)) + "\n" + event + "\n",
			[]errortrack.EnvelopeItem{{Type: "event", Payload: []byte(event)}}},
		{"no length, no trailing newline", "{}\n" + `{"type":"session"}` + "\n" + `{"sid":"a"}`,
			[]errortrack.EnvelopeItem{{Type: "session", Payload: []byte(`{"sid":"a"}`)}}},
		{"mixed, attachment with length 0", "{}\n" + `{"type":"attachment","length":0}` + "\n\n" + `{"type":"event"}` + "\n" + `{"a":1}` + "\n",
			[]errortrack.EnvelopeItem{{Type: "attachment", Payload: []byte{}}, {Type: "event", Payload: []byte(`{"a":1}`)}}},
		{"header only", "{}\n", nil},
		{"CRLF headers", "{}\r\n" + `{"type":"event"}` + "\r\n" + `{"a":1}`, []errortrack.EnvelopeItem{{Type: "event", Payload: []byte(`{"a":1}`)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, err := errortrack.ParseEnvelope([]byte(c.in), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(env.Items) != len(c.want) {
				t.Fatalf("items = %d, want %d", len(env.Items), len(c.want))
			}
			for i := range c.want {
				if env.Items[i].Type != c.want[i].Type || !bytes.Equal(bytes.TrimRight(env.Items[i].Payload, "\r"), c.want[i].Payload) {
					t.Errorf("item %d = %s %q, want %s %q", i, env.Items[i].Type, env.Items[i].Payload, c.want[i].Type, c.want[i].Payload)
				}
			}
		})
	}
}

func TestParseEnvelopeRefusesMalformedInputNamingThePart(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "envelope header: empty"},
		{"not json\n", "envelope header: not a JSON object"},
		{`{"event_id":` + "\n", "envelope header: malformed JSON"},
		{`{"event_id":5}` + "\n", `envelope header: "event_id" cannot be a JSON number`},
		{"{} {}\n", "envelope header: text after the JSON object"},
		{"{}\n" + `{"length":2}` + "\nab", `envelope item 1: header has no "type"`},
		{"{}\n" + `["event"]` + "\n{}", "envelope item 1: header: not a JSON object"},
		{"{}\n" + `{"type":"event","length":-1}` + "\n", `envelope item 1: "length" must be a whole number`},
		{"{}\n" + `{"type":"event","length":"2"}` + "\nab", `envelope item 1: "length" must be a whole number`},
		{"{}\n" + `{"type":"event","length":50}` + "\n{}", `envelope item 1: "length" says 50 bytes but only 2 follow`},
		{"{}\n" + `{"type":"event","length":1}` + "\n{}\n", `envelope item 1: payload is longer than its "length" of 1 bytes`},
		{"{}\n" + strings.Repeat(`{"type":"x"}`+"\n{}\n", errortrack.MaxItems+1), "more than 100 items"},
	}
	for _, c := range cases {
		_, err := errortrack.ParseEnvelope([]byte(c.in), 1<<20)
		var ee *errortrack.EnvelopeError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseEnvelope(%q) = %v, want an EnvelopeError containing %q", c.in, err, c.want)
		}
	}
}

func TestParseEnvelopeRefusesItemsOverTheLimit(t *testing.T) {
	big := strings.Repeat("x", 101)
	for _, in := range []string{
		"{}\n" + `{"type":"event","length":101}` + "\n" + big,
		"{}\n" + `{"type":"event"}` + "\n" + big,
		"{}\n" + `{"type":"event","length":99999999999999}` + "\n",
	} {
		_, err := errortrack.ParseEnvelope([]byte(in), 100)
		var tl *errortrack.ItemTooLargeError
		if !errors.As(err, &tl) || tl.Limit != 100 || tl.Item != 1 || tl.Type != "event" {
			t.Errorf("ParseEnvelope(%.40q…) = %v, want ItemTooLargeError for item 1", in, err)
		}
	}
	if _, err := errortrack.ParseEnvelope([]byte("{}\n"+`{"type":"event"}`+"\n"+big[:100]), 100); err != nil {
		t.Errorf("an item of exactly the limit: %v", err)
	}
}

// FuzzParseEnvelope: whatever the input, parsing never panics, and what it
// returns survives a round trip — written back out with lengths, it parses
// to the same items.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte("{}\n{\"type\":\"event\",\"length\":7}\n{\"a\":1}\n"))
	f.Add([]byte("{\"dsn\":\"https://k@h/1\"}\n{\"type\":\"session\"}\n{}\n{\"type\":\"event\"}\n{}"))
	f.Add([]byte("{}\r\n{\"type\":\"x\",\"length\":0}\r\n\n"))
	f.Add([]byte("{}\n{\"type\":\"event\",\"length\":3}\nab\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := errortrack.ParseEnvelope(b, 4096)
		if err != nil {
			return
		}
		var out bytes.Buffer
		out.WriteString("{}\n")
		for _, it := range env.Items {
			if len(it.Payload) > 4096 {
				t.Fatalf("item of %d bytes passed a 4096 limit", len(it.Payload))
			}
			h, _ := json.Marshal(map[string]any{"type": it.Type, "length": len(it.Payload)})
			out.Write(h)
			out.WriteByte('\n')
			out.Write(it.Payload)
			out.WriteByte('\n')
		}
		again, err := errortrack.ParseEnvelope(out.Bytes(), 4096)
		if err != nil {
			t.Fatalf("round trip does not parse: %v\n%q", err, out.Bytes())
		}
		if len(again.Items) != len(env.Items) {
			t.Fatalf("round trip: %d items, want %d", len(again.Items), len(env.Items))
		}
		for i := range env.Items {
			if again.Items[i].Type != env.Items[i].Type || !bytes.Equal(again.Items[i].Payload, env.Items[i].Payload) {
				t.Fatalf("round trip changed item %d", i)
			}
		}
	})
}
