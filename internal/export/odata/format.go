package odata

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Metadata levels of the JSON format (odata.metadata=…).
const (
	MetadataMinimal = "minimal" // @odata.context, count and nextLink (the default)
	MetadataNone    = "none"    // no control information but count and nextLink
	MetadataFull    = "full"    // also each entity's type and id, and the type of every non-JSON value
)

// Media is the JSON flavour a response is written in, negotiated from
// $format or the Accept header.
type Media struct {
	Metadata string // MetadataMinimal, MetadataNone or MetadataFull
	// IEEE754: IEEE754Compatible=true, Int64 and Decimal values (and
	// @odata.count) are written as strings, which JavaScript reads without
	// losing digits.
	IEEE754 bool
}

// ContentType is the response's Content-Type for m.
func (m Media) ContentType() string {
	md := m.Metadata
	if md == "" {
		md = MetadataMinimal
	}
	return "application/json;odata.metadata=" + md + ";odata.streaming=true;IEEE754Compatible=" + strconv.FormatBool(m.IEEE754)
}

func notAcceptable(target, msg string) *Error {
	return &Error{Status: http.StatusNotAcceptable, Code: CodeNotAcceptable, Target: target, Message: msg}
}

// parseMedia reads a JSON media type with OData's parameters. strict makes
// unknown parameters an error ($format, which the client wrote for Ferry);
// in Accept they are ignored, as HTTP asks. ok is false for a type that is
// not JSON.
func parseMedia(v string, strict bool) (m Media, q float64, ok bool, err error) {
	parts := strings.Split(v, ";")
	typ := strings.ToLower(strings.TrimSpace(parts[0]))
	m.Metadata, q = MetadataMinimal, 1
	switch typ {
	case "json", "application/json", "application/*", "*/*":
	default:
		return m, 0, false, nil
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		k, val = strings.ToLower(strings.TrimSpace(k)), strings.ToLower(strings.Trim(strings.TrimSpace(val), `"`))
		switch k {
		case "odata.metadata", "metadata":
			switch val {
			case MetadataMinimal, MetadataNone, MetadataFull:
				m.Metadata = val
			default:
				return m, 0, false, notAcceptable("$format", "odata.metadata must be minimal, none or full")
			}
		case "ieee754compatible":
			switch val {
			case "true", "false":
				m.IEEE754 = val == "true"
			default:
				return m, 0, false, notAcceptable("$format", "IEEE754Compatible must be true or false")
			}
		case "q":
			f, perr := strconv.ParseFloat(val, 64)
			if perr != nil || f < 0 || f > 1 {
				f = 1
			}
			q = f
		case "odata.streaming", "streaming", "charset", "odata.exponentialdecimals", "exponentialdecimals":
		default:
			if strict {
				return m, 0, false, notAcceptable("$format", "$format: unknown parameter "+k)
			}
		}
	}
	return m, q, true, nil
}

// Negotiate picks the JSON flavour of a response: $format when given (it
// overrides Accept, as OData says), else the best JSON type the Accept
// header allows, else 406. An absent Accept means minimal JSON.
func Negotiate(q Query, accept string) (Media, error) {
	if q.Format != "" {
		m, _, ok, err := parseMedia(q.Format, true)
		if err != nil {
			return m, err
		}
		if !ok {
			return m, notAcceptable("$format", "$format: only application/json is served here")
		}
		return m, nil
	}
	if strings.TrimSpace(accept) == "" {
		return Media{Metadata: MetadataMinimal}, nil
	}
	type cand struct {
		m    Media
		q    float64
		spec int // exact type beats a wildcard of the same quality
	}
	var cands []cand
	for _, r := range strings.Split(accept, ",") {
		if strings.TrimSpace(r) == "" {
			continue
		}
		m, qv, ok, err := parseMedia(r, false)
		if err != nil {
			return m, &Error{Status: http.StatusNotAcceptable, Code: CodeNotAcceptable, Target: "Accept", Message: err.(*Error).Message}
		}
		if ok && qv > 0 {
			spec := 0
			if t := strings.ToLower(strings.TrimSpace(strings.Split(r, ";")[0])); t == "application/json" {
				spec = 1
			}
			cands = append(cands, cand{m, qv, spec})
		}
	}
	if len(cands) == 0 {
		return Media{}, notAcceptable("Accept", "This resource is served as application/json (odata.metadata=minimal, none or full); the Accept header allows none of them.")
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].q != cands[j].q {
			return cands[i].q > cands[j].q
		}
		return cands[i].spec > cands[j].spec
	})
	return cands[0].m, nil
}

// NegotiateMetadata checks that $metadata may be answered as CSDL XML, the
// only form Ferry serves it in.
func NegotiateMetadata(q Query, accept string) error {
	if q.Format != "" {
		switch strings.ToLower(strings.TrimSpace(strings.Split(q.Format, ";")[0])) {
		case "xml", "application/xml":
			return nil
		}
		return notAcceptable("$format", "$metadata is served as application/xml only")
	}
	if strings.TrimSpace(accept) == "" {
		return nil
	}
	for _, r := range strings.Split(accept, ",") {
		parts := strings.Split(r, ";")
		typ := strings.ToLower(strings.TrimSpace(parts[0]))
		qv := 1.0
		for _, p := range parts[1:] {
			if k, v, _ := strings.Cut(strings.TrimSpace(p), "="); strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					qv = f
				}
			}
		}
		switch typ {
		case "application/xml", "text/xml", "application/*", "text/*", "*/*":
			if qv > 0 {
				return nil
			}
		}
	}
	return notAcceptable("Accept", "$metadata is served as application/xml (CSDL XML); the Accept header does not allow it.")
}
