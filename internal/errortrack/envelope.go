package errortrack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope is a parsed Sentry envelope: a header line, then items, each an
// item header line and a payload. A payload is exactly "length" bytes when
// its header says so (and may then hold newlines), otherwise it runs to the
// next newline.
type Envelope struct {
	EventID string // from the envelope header, may be empty
	DSN     string // from the envelope header, may be empty
	Items   []EnvelopeItem
}

// EnvelopeItem is one item: its type and payload (other header fields are
// not needed: Ferry keeps events and sessions and skips the rest).
type EnvelopeItem struct {
	Type    string
	Payload []byte
}

// MaxItems bounds the items of one envelope (SDKs send one event and a few
// sessions or client reports).
const MaxItems = 100

// EnvelopeError says what is wrong with an envelope, naming the item (1-based,
// 0 for the envelope header).
type EnvelopeError struct {
	Item   int
	Reason string
}

func (e *EnvelopeError) Error() string {
	if e.Item == 0 {
		return "envelope header: " + e.Reason
	}
	return fmt.Sprintf("envelope item %d: %s", e.Item, e.Reason)
}

// ItemTooLargeError: an item is bigger than the limit.
type ItemTooLargeError struct {
	Item, Size, Limit int
	Type              string
}

func (e *ItemTooLargeError) Error() string {
	return fmt.Sprintf("envelope item %d (%s) is %d bytes; at most %d are accepted", e.Item, e.Type, e.Size, e.Limit)
}

// ParseEnvelope parses b, refusing any item larger than maxItem bytes.
func ParseEnvelope(b []byte, maxItem int) (*Envelope, error) {
	line, rest, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		rest = nil
	}
	var h struct {
		EventID string `json:"event_id"`
		DSN     string `json:"dsn"`
	}
	if err := decodeHeader(line, &h); err != nil {
		return nil, &EnvelopeError{Item: 0, Reason: err.Error()}
	}
	env := &Envelope{EventID: h.EventID, DSN: h.DSN}
	for n := 1; ; n++ {
		// Blank lines between items (and at the end) are tolerated.
		for len(rest) > 0 && (rest[0] == '\n' || rest[0] == '\r') {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return env, nil
		}
		if n > MaxItems {
			return nil, &EnvelopeError{Item: n, Reason: fmt.Sprintf("more than %d items", MaxItems)}
		}
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		var ih struct {
			Type   string          `json:"type"`
			Length json.RawMessage `json:"length"`
		}
		if err := decodeHeader(line, &ih); err != nil {
			return nil, &EnvelopeError{Item: n, Reason: "header: " + err.Error()}
		}
		if ih.Type == "" {
			return nil, &EnvelopeError{Item: n, Reason: `header has no "type"`}
		}
		var payload []byte
		if l := bytes.TrimSpace(ih.Length); len(l) > 0 && string(l) != "null" {
			var length int64
			if err := json.Unmarshal(l, &length); err != nil || length < 0 {
				return nil, &EnvelopeError{Item: n, Reason: `"length" must be a whole number of bytes, not ` + truncate(string(l), 20)}
			}
			if length > int64(maxItem) {
				return nil, &ItemTooLargeError{Item: n, Type: ih.Type, Size: int(min(length, 1<<40)), Limit: maxItem}
			}
			if length > int64(len(rest)) {
				return nil, &EnvelopeError{Item: n, Reason: fmt.Sprintf(`"length" says %d bytes but only %d follow`, length, len(rest))}
			}
			payload, rest = rest[:length], rest[length:]
			if len(rest) > 0 {
				if rest[0] != '\n' {
					return nil, &EnvelopeError{Item: n, Reason: fmt.Sprintf(`payload is longer than its "length" of %d bytes`, length)}
				}
				rest = rest[1:]
			}
		} else {
			payload, rest, _ = bytes.Cut(rest, []byte{'\n'})
			if len(payload) > maxItem {
				return nil, &ItemTooLargeError{Item: n, Type: ih.Type, Size: len(payload), Limit: maxItem}
			}
		}
		env.Items = append(env.Items, EnvelopeItem{Type: ih.Type, Payload: payload})
	}
}

// decodeHeader reads one header line: a JSON object, nothing else.
func decodeHeader(line []byte, v any) error {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return errors.New("empty; want a JSON object")
	}
	if t := bytes.TrimSpace(line); t[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%q cannot be a JSON %s", te.Field, te.Value)
		}
		return errors.New("malformed JSON")
	}
	if dec.More() {
		return errors.New("text after the JSON object")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
