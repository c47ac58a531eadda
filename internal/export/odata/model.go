package odata

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EdmType is a primitive type of the Entity Data Model.
type EdmType string

// The primitive types Ferry's feeds use.
const (
	EdmString         EdmType = "Edm.String"
	EdmInt64          EdmType = "Edm.Int64"
	EdmDecimal        EdmType = "Edm.Decimal"
	EdmBoolean        EdmType = "Edm.Boolean"
	EdmDate           EdmType = "Edm.Date"
	EdmDateTimeOffset EdmType = "Edm.DateTimeOffset"
)

func (t EdmType) valid() bool {
	switch t {
	case EdmString, EdmInt64, EdmDecimal, EdmBoolean, EdmDate, EdmDateTimeOffset:
		return true
	}
	return false
}

// Property is one column of an entity set.
type Property struct {
	Name       string  // a SimpleIdentifier; see PropertyName
	Type       EdmType // for a collection, the item type
	Collection bool    // Collection(Type): a JSON array, never null
	Nullable   bool    // may be null; key properties never are
	Sortable   bool    // may appear in $orderby. Mark only properties whose JQL order equals OData's: datetimes and numbers. Not Key: JQL sorts issue keys by project, then number ("A-9" < "A-10"); OData by code point.
	Doc        string  // Core.Description in $metadata
}

// EntitySet is one feed: Issues, Changelog, ….
type EntitySet struct {
	Name       string   // the URL segment and set name, e.g. "Issues"
	EntityType string   // the type name, e.g. "Issue"
	Key        []string // key property names; Power BI needs one
	Properties []Property
}

// Property returns the named property (case-sensitive, as OData names are).
func (s EntitySet) Property(name string) (Property, bool) {
	for _, p := range s.Properties {
		if p.Name == name {
			return p, true
		}
	}
	return Property{}, false
}

func (s EntitySet) isKey(name string) bool {
	for _, k := range s.Key {
		if k == name {
			return true
		}
	}
	return false
}

// Service is the whole data model of one data source.
type Service struct {
	Namespace string // schema namespace, e.g. "Ferry"
	Sets      []EntitySet
	Relations []Relation
}

// Relation is a many-to-one relation between two entity sets: each row of
// From refers, by its Property, to the row of To whose ReferencedProperty
// holds the same value. $metadata declares it as a navigation property
// Name on From with a referential constraint, and, when Partner is set, a
// collection navigation property Partner on To — what Power BI and Excel
// read to relate the tables without manual work.
type Relation struct {
	Name               string // on From, e.g. "Issue"
	From               string // entity set, e.g. "Worklogs"
	Property           string // e.g. "IssueId"
	To                 string // entity set, e.g. "Issues"
	ReferencedProperty string // e.g. "Id"
	Partner            string // on To, e.g. "Worklogs"; "" for none
}

// Set returns the named entity set.
func (s Service) Set(name string) (EntitySet, bool) {
	for _, es := range s.Sets {
		if es.Name == name {
			return es, true
		}
	}
	return EntitySet{}, false
}

// Validate reports the first thing that would make $metadata invalid or a
// client unhappy: bad identifiers, duplicate names, a missing or nullable key.
func (s Service) Validate() error {
	if !validNamespace(s.Namespace) {
		return fmt.Errorf("odata: namespace %q is not a dotted identifier", s.Namespace)
	}
	if len(s.Sets) == 0 {
		return fmt.Errorf("odata: service has no entity sets")
	}
	sets, types := map[string]bool{}, map[string]bool{}
	for _, es := range s.Sets {
		if !ValidIdentifier(es.Name) || !ValidIdentifier(es.EntityType) {
			return fmt.Errorf("odata: entity set %q / type %q: not a SimpleIdentifier", es.Name, es.EntityType)
		}
		if sets[es.Name] || types[es.EntityType] {
			return fmt.Errorf("odata: entity set %q or type %q declared twice", es.Name, es.EntityType)
		}
		sets[es.Name], types[es.EntityType] = true, true
		if err := es.validate(); err != nil {
			return err
		}
	}
	navs := map[string]bool{} // set + "\x00" + lower-case name
	for _, es := range s.Sets {
		for _, p := range es.Properties {
			navs[es.Name+"\x00"+strings.ToLower(p.Name)] = true
		}
	}
	for _, r := range s.Relations {
		from, ok1 := s.Set(r.From)
		to, ok2 := s.Set(r.To)
		if !ok1 || !ok2 {
			return fmt.Errorf("odata: relation %s.%s: no entity set %q or %q", r.From, r.Name, r.From, r.To)
		}
		p, ok1 := from.Property(r.Property)
		q, ok2 := to.Property(r.ReferencedProperty)
		if !ok1 || !ok2 || p.Type != q.Type || p.Collection || q.Collection {
			return fmt.Errorf("odata: relation %s.%s: %s.%s and %s.%s are not two single values of one type", r.From, r.Name, r.From, r.Property, r.To, r.ReferencedProperty)
		}
		for _, n := range [][2]string{{r.From, r.Name}, {r.To, r.Partner}} {
			if n[1] == "" {
				continue
			}
			if !ValidIdentifier(n[1]) || navs[n[0]+"\x00"+strings.ToLower(n[1])] {
				return fmt.Errorf("odata: navigation property %s.%s: not a SimpleIdentifier, or declared twice", n[0], n[1])
			}
			navs[n[0]+"\x00"+strings.ToLower(n[1])] = true
		}
	}
	return nil
}

func (es EntitySet) validate() error {
	seen := map[string]bool{}
	for _, p := range es.Properties {
		if !ValidIdentifier(p.Name) {
			return fmt.Errorf("odata: %s: property %q is not a SimpleIdentifier", es.Name, p.Name)
		}
		// OData 4.01 clients may match names case-insensitively, so names
		// that differ only in case are refused.
		if seen[strings.ToLower(p.Name)] {
			return fmt.Errorf("odata: %s: property %q declared twice (names are compared case-insensitively)", es.Name, p.Name)
		}
		seen[strings.ToLower(p.Name)] = true
		if !p.Type.valid() {
			return fmt.Errorf("odata: %s.%s: unsupported type %q", es.Name, p.Name, p.Type)
		}
		if p.Collection && p.Sortable {
			return fmt.Errorf("odata: %s.%s: a collection cannot be sortable", es.Name, p.Name)
		}
	}
	if len(es.Key) == 0 {
		return fmt.Errorf("odata: %s: no key (Power BI and Excel need one)", es.Name)
	}
	for _, k := range es.Key {
		p, ok := es.Property(k)
		switch {
		case !ok:
			return fmt.Errorf("odata: %s: key %q is not a property", es.Name, k)
		case p.Nullable || p.Collection:
			return fmt.Errorf("odata: %s: key %q must be a non-nullable single value", es.Name, k)
		}
	}
	return nil
}

// ValidIdentifier reports whether s is a CSDL SimpleIdentifier: a letter or
// underscore, then letters, digits, underscores and combining marks, at most
// 128 characters.
func ValidIdentifier(s string) bool {
	if s == "" || utf8.RuneCountInString(s) > 128 || !utf8.ValidString(s) {
		return false
	}
	for i, r := range s {
		if i == 0 && !identStart(r) || i > 0 && !identPart(r) {
			return false
		}
	}
	return true
}

func validNamespace(s string) bool {
	if s == "" || len(s) > 511 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if !ValidIdentifier(part) {
			return false
		}
	}
	// "Edm", "odata", "System", "Transient" are reserved namespaces.
	switch s {
	case "Edm", "odata", "System", "Transient":
		return false
	}
	return true
}

func identStart(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) }

func identPart(r rune) bool {
	return identStart(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Nd, unicode.Mn, unicode.Mc, unicode.Pc, unicode.Cf)
}

// PropertyName turns a Jira field name ("Story Points", "1st response",
// "Σ Time Spent") into a SimpleIdentifier in PascalCase ("StoryPoints",
// "_1stResponse", "ΣTimeSpent"). Letters outside ASCII are kept: CSDL allows
// them and Power BI shows them. A name with no letters or digits becomes
// "Field". Use a Namer to keep names unique within a set.
func PropertyName(jiraFieldName string) string {
	var b strings.Builder
	upNext := true
	for _, r := range jiraFieldName {
		if r == utf8.RuneError || !identPart(r) || r == '_' {
			upNext = true
			continue
		}
		if upNext && unicode.IsLower(r) {
			r = unicode.ToUpper(r)
		}
		upNext = false
		b.WriteRune(r)
	}
	name := b.String()
	if name == "" {
		return "Field"
	}
	if first, _ := utf8.DecodeRuneInString(name); !identStart(first) {
		name = "_" + name
	}
	return truncateRunes(name, 128)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// Namer hands out unique property names within one entity set. Names are
// compared case-insensitively, since OData 4.01 clients may.
type Namer struct{ used map[string]bool }

// NewNamer returns a Namer that never hands out the reserved names (the
// set's fixed properties: "Key", "Summary", …).
func NewNamer(reserved ...string) *Namer {
	n := &Namer{used: map[string]bool{}}
	for _, r := range reserved {
		n.used[strings.ToLower(r)] = true
	}
	return n
}

// Name returns PropertyName(jiraFieldName), suffixed _2, _3, … if taken.
func (n *Namer) Name(jiraFieldName string) string {
	base := PropertyName(jiraFieldName)
	name := base
	for i := 2; n.used[strings.ToLower(name)]; i++ {
		suffix := "_" + strconv.Itoa(i)
		name = truncateRunes(base, 128-len(suffix)) + suffix
	}
	n.used[strings.ToLower(name)] = true
	return name
}
