package odata

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Query is the parsed system query options of one request on an entity set.
type Query struct {
	Select    []string    // $select in request order, deduplicated; nil for all properties ($select absent or *)
	Top       *int        // $top: rows in total across all pages; nil for no limit
	Skip      int         // $skip: rows to skip before the first page (not carried to the next page)
	OrderBy   []OrderItem // $orderby
	Count     bool        // $count=true: write @odata.count
	Filter    *Expr       // $filter; nil for none
	SkipToken string      // $skiptoken, still signed and opaque: see DecodeCursor
	Format    string      // $format as given (checked; see Negotiate), else ""

	set string // the entity set it was parsed for, bound into cursors
}

// OrderItem is one $orderby term.
type OrderItem struct {
	Property string
	Desc     bool
}

// The system query options of OData 4.01 Ferry recognises but does not
// support: a request using one is answered 501.
var unsupportedOptions = map[string]bool{
	"$expand": true, "$search": true, "$apply": true, "$compute": true, "$levels": true,
	"$index": true, "$schemaversion": true, "$deltatoken": true, "$id": true,
}

var supportedOptions = map[string]bool{
	"$select": true, "$top": true, "$skip": true, "$orderby": true, "$count": true,
	"$filter": true, "$skiptoken": true, "$format": true,
}

// ParseQuery parses the raw query string of a request on set (r.URL.RawQuery).
//
// Option names follow OData 4.01: case-insensitive, with or without the "$"
// (so "$top", "%24top", "$TOP" and "top" are all $top). Names and values
// are decoded as form-encoded query strings are: "+" is a space (Python
// requests and Go's url.Values encode spaces so), and a literal plus arrives
// as %2B. Parameters that are not system query options are ignored, as the
// spec asks. maxTop caps $top (0: no cap).
func ParseQuery(rawQuery string, set EntitySet, maxTop int) (Query, error) {
	q := Query{set: set.Name}
	seen := map[string]bool{}
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(rawName)
		if err != nil {
			continue // not a system option we could recognise; custom options are ignored
		}
		opt := strings.ToLower(name)
		if !strings.HasPrefix(opt, "$") && (supportedOptions["$"+opt] || unsupportedOptions["$"+opt]) {
			opt = "$" + opt
		}
		if strings.HasPrefix(opt, "@") {
			continue // parameter alias; $filter rejects uses of aliases
		}
		if !strings.HasPrefix(opt, "$") {
			continue // custom query option
		}
		switch {
		case opt == "$expand":
			// Power Query's expand button on a navigation column asks for it.
			return Query{}, notImplemented(opt, "$expand is not supported: load the related table as its own entity set; $metadata relates the tables by their keys")
		case unsupportedOptions[opt]:
			return Query{}, notImplemented(opt, "%s is not supported", opt)
		case !supportedOptions[opt]:
			return Query{}, badRequest(opt, "unknown system query option %s", opt)
		case seen[opt]:
			return Query{}, badRequest(opt, "%s is given more than once", opt)
		}
		seen[opt] = true
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return Query{}, badRequest(opt, "%s: malformed percent-encoding", opt)
		}
		if !utf8.ValidString(value) {
			return Query{}, badRequest(opt, "%s is not valid UTF-8", opt)
		}
		if err := q.set1(opt, value, set, maxTop); err != nil {
			return Query{}, err
		}
	}
	if q.SkipToken != "" && seen["$skip"] {
		return Query{}, badRequest("$skip", "$skip cannot be combined with $skiptoken: follow @odata.nextLink as given")
	}
	return q, nil
}

func (q *Query) set1(opt, v string, set EntitySet, maxTop int) error {
	switch opt {
	case "$top":
		n, err := nonNegative(opt, v)
		if err != nil {
			return err
		}
		if maxTop > 0 && n > maxTop {
			return badRequest(opt, "$top must be at most %d", maxTop)
		}
		q.Top = &n
	case "$skip":
		n, err := nonNegative(opt, v)
		if err != nil {
			return err
		}
		q.Skip = n
	case "$count":
		switch strings.ToLower(v) {
		case "true":
			q.Count = true
		case "false":
			q.Count = false
		default:
			return badRequest(opt, "$count must be true or false")
		}
	case "$select":
		sel, err := parseSelect(v, set)
		if err != nil {
			return err
		}
		q.Select = sel
	case "$orderby":
		ob, err := parseOrderBy(v, set)
		if err != nil {
			return err
		}
		q.OrderBy = ob
	case "$filter":
		if strings.TrimSpace(v) == "" {
			return badRequest(opt, "$filter is empty")
		}
		e, err := ParseFilter(v, set)
		if err != nil {
			return err
		}
		q.Filter = e
	case "$skiptoken":
		if v == "" {
			return badRequest(opt, "$skiptoken is empty")
		}
		q.SkipToken = v
	case "$format":
		f, err := parseFormat(v)
		if err != nil {
			return err
		}
		q.Format = f
	}
	return nil
}

func nonNegative(opt, v string) (int, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, badRequest(opt, "%s must be a non-negative integer", opt)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > 1<<31-1 {
		return 0, badRequest(opt, "%s is too large", opt)
	}
	return n, nil
}

func splitList(v string) []string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func parseSelect(v string, set EntitySet) ([]string, error) {
	var sel []string
	seen := map[string]bool{}
	star := false
	for _, item := range splitList(v) {
		switch {
		case item == "":
			return nil, badRequest("$select", "$select has an empty item")
		case item == "*":
			star = true
			continue
		case strings.ContainsAny(item, "/(") || strings.HasSuffix(item, ".*"):
			return nil, notImplemented("$select", "$select: %s: paths, options and namespaces are not supported", item)
		}
		if _, ok := set.Property(item); !ok {
			return nil, unknownProperty("$select", item)
		}
		if !seen[item] {
			seen[item] = true
			sel = append(sel, item)
		}
	}
	if star {
		return nil, nil
	}
	return sel, nil
}

func parseOrderBy(v string, set EntitySet) ([]OrderItem, error) {
	var items []OrderItem
	seen := map[string]bool{}
	for _, item := range splitList(v) {
		if item == "" {
			return nil, badRequest("$orderby", "$orderby has an empty item")
		}
		fields := strings.Fields(item)
		oi := OrderItem{Property: fields[0]}
		if len(fields) == 2 {
			switch strings.ToLower(fields[1]) {
			case "asc":
			case "desc":
				oi.Desc = true
			default:
				return nil, badRequest("$orderby", "$orderby: %q: direction must be asc or desc", item)
			}
		}
		if len(fields) > 2 || strings.ContainsAny(fields[0], "/()") {
			return nil, notImplemented("$orderby", "$orderby: %q: only a property with asc or desc is supported", item)
		}
		p, ok := set.Property(oi.Property)
		if !ok {
			return nil, unknownProperty("$orderby", oi.Property)
		}
		if !p.Sortable {
			return nil, notImplemented("$orderby", "$orderby: sorting by %s is not supported (sortable: %s)", p.Name, strings.Join(sortable(set), ", "))
		}
		if seen[p.Name] {
			return nil, badRequest("$orderby", "$orderby: %s appears twice", p.Name)
		}
		seen[p.Name] = true
		items = append(items, oi)
	}
	return items, nil
}

func sortable(set EntitySet) []string {
	var names []string
	for _, p := range set.Properties {
		if p.Sortable {
			names = append(names, p.Name)
		}
	}
	if names == nil {
		return []string{"none"}
	}
	return names
}

// parseFormat checks a $format value: JSON in the forms clients send
// ("json", "application/json" with OData's parameters) or, for $metadata,
// "xml". What is served is decided by Negotiate and NegotiateMetadata; the
// value is kept as given so that nextLinks repeat it.
func parseFormat(v string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(strings.Split(v, ";")[0]))
	switch t {
	case "json", "application/json", "xml", "application/xml":
	default:
		return "", notAcceptable("$format", "$format: only json (and xml for $metadata) is served")
	}
	if t == "json" || t == "application/json" {
		if _, _, _, err := parseMedia(v, true); err != nil {
			return "", err
		}
	}
	return strings.TrimSpace(v), nil
}

// Columns returns the properties a response row carries: the $select'ed
// ones plus the key (so every row stays identifiable), in the set's order.
func (q Query) Columns(set EntitySet) []Property {
	if q.Select == nil {
		return set.Properties
	}
	want := map[string]bool{}
	for _, s := range q.Select {
		want[s] = true
	}
	var cols []Property
	for _, p := range set.Properties {
		if want[p.Name] || set.isKey(p.Name) {
			cols = append(cols, p)
		}
	}
	return cols
}

// ContextURL is the @odata.context of a response on set: serviceRoot is the
// absolute URL of the service, e.g. "https://ferry.example/odata/src1".
// With $select it names the selected properties, as the JSON format asks.
func ContextURL(serviceRoot string, set EntitySet, q Query) string {
	u := strings.TrimSuffix(serviceRoot, "/") + "/$metadata#" + set.Name
	if q.Select != nil {
		names := make([]string, len(q.Select))
		for i, s := range q.Select {
			names[i] = url.PathEscape(s)
		}
		u += "(" + strings.Join(names, ",") + ")"
	}
	return u
}

// EntityContextURL is the @odata.context of a single entity of set
// (Issues('PROJ-1')): ContextURL with "/$entity".
func EntityContextURL(serviceRoot string, set EntitySet, q Query) string {
	return ContextURL(serviceRoot, set, q) + "/$entity"
}

// NextLink is the @odata.nextLink for the page after this one. base is the
// absolute URL of the entity set; it may carry custom query parameters,
// which are kept. The link repeats $select, $filter, $orderby, $count,
// $top and $format, and adds $skiptoken; it drops $skip, which the token
// already accounts for. The token (EncodeCursor) carries the rows served so
// far, so $top still counts rows across all pages.
func NextLink(base string, q Query, skiptoken string) string {
	var opts []string
	add := func(name, value string) { opts = append(opts, name+"="+escapeValue(value)) }
	if q.Select != nil {
		add("$select", strings.Join(q.Select, ","))
	}
	if q.Filter != nil {
		add("$filter", q.Filter.String())
	}
	if len(q.OrderBy) > 0 {
		add("$orderby", orderByString(q.OrderBy))
	}
	if q.Count {
		add("$count", "true")
	}
	if q.Top != nil {
		add("$top", strconv.Itoa(*q.Top))
	}
	if q.Format != "" {
		add("$format", q.Format)
	}
	add("$skiptoken", skiptoken)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	return base + sep + strings.Join(opts, "&")
}

func orderByString(items []OrderItem) string {
	parts := make([]string, len(items))
	for i, o := range items {
		parts[i] = o.Property
		if o.Desc {
			parts[i] += " desc"
		}
	}
	return strings.Join(parts, ",")
}

// escapeValue percent-encodes a query option value. It keeps the characters
// OData expressions are made of readable and encodes everything a URL or a
// form decoder could misread: space (%20, never "+"), "+", "&", "=", "#",
// "%", and all non-ASCII bytes.
func escapeValue(s string) string {
	const safe = "-._~'(),:*!@$/"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte("0123456789ABCDEF"[c>>4])
		b.WriteByte("0123456789ABCDEF"[c&15])
	}
	return b.String()
}

// KeyFilter turns the key predicate of a request by key — the text between
// the parentheses of Issues('PROJ-1') or Issues(Key='PROJ-1') — into the
// equivalent $filter, "Key eq 'PROJ-1'". A predicate naming a property that
// is not a key, or a literal of the wrong type, is a 400.
func KeyFilter(set EntitySet, predicate string) (*Expr, error) {
	parts, err := splitOutsideQuotes(predicate, ',')
	if err != nil {
		return nil, err
	}
	var terms []string
	for _, part := range parts {
		nv, err := splitOutsideQuotes(part, '=')
		if err != nil {
			return nil, err
		}
		name, value := "", strings.TrimSpace(nv[0])
		switch {
		case len(nv) == 1 && len(parts) == 1 && len(set.Key) == 1:
			name = set.Key[0]
		case len(nv) == 2:
			name, value = strings.TrimSpace(nv[0]), strings.TrimSpace(nv[1])
		default:
			return nil, badRequest("key", "the key predicate (%s) must name %s", predicate, strings.Join(set.Key, ", "))
		}
		if !set.isKey(name) {
			return nil, badRequest("key", "%s is not a key of %s (its key is %s)", name, set.Name, strings.Join(set.Key, ", "))
		}
		if value == "" {
			return nil, badRequest("key", "the key predicate (%s) has no value", predicate)
		}
		terms = append(terms, name+" eq "+value)
	}
	if len(terms) != len(set.Key) {
		return nil, badRequest("key", "the key predicate (%s) must give %s", predicate, strings.Join(set.Key, ", "))
	}
	e, err := ParseFilter(strings.Join(terms, " and "), set)
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) && oe.Status == 400 {
			oe.Target = "key"
		}
		return nil, err
	}
	return e, nil
}

// splitOutsideQuotes splits s at sep where it is not inside a '…' literal.
func splitOutsideQuotes(s string, sep byte) ([]string, error) {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\'':
			quoted = !quoted // a doubled quote toggles twice
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, badRequest("key", "the key predicate (%s) has an unterminated string", s)
	}
	return append(out, s[start:]), nil
}
