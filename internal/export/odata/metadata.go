package odata

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
)

// WriteMetadata writes the service's CSDL XML ($metadata), Version 4.0 — the
// version Power BI and Excel read. It validates the model first and writes
// nothing if it is invalid.
func (s Service) WriteMetadata(w io.Writer) error {
	if err := s.Validate(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	p := func(parts ...string) {
		for _, s := range parts {
			bw.WriteString(s)
		}
	}
	p(xml.Header)
	p(`<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">`, "\n")
	if s.hasDocs() {
		// Core.Description needs the Core vocabulary in scope.
		p(`  <edmx:Reference Uri="https://oasis-tcs.github.io/odata-vocabularies/vocabularies/Org.OData.Core.V1.xml">`, "\n")
		p(`    <edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/>`, "\n")
		p(`  </edmx:Reference>`, "\n")
	}
	p(`  <edmx:DataServices>`, "\n")
	p(`    <Schema Namespace="`, attr(s.Namespace), `" xmlns="http://docs.oasis-open.org/odata/ns/edm">`, "\n")
	for _, es := range s.Sets {
		p(`      <EntityType Name="`, attr(es.EntityType), `">`, "\n")
		p(`        <Key>`)
		for _, k := range es.Key {
			p(`<PropertyRef Name="`, attr(k), `"/>`)
		}
		p(`</Key>`, "\n")
		for _, pr := range es.Properties {
			typ := string(pr.Type)
			if pr.Collection {
				typ = "Collection(" + typ + ")"
			}
			p(`        <Property Name="`, attr(pr.Name), `" Type="`, typ, `"`)
			// For a collection, Nullable is about its items; Ferry's
			// collections hold no nulls and are themselves never null.
			if pr.Collection || !pr.Nullable {
				p(` Nullable="false"`)
			}
			switch pr.Type {
			case EdmDecimal:
				// CSDL's default scale is 0, which would make every
				// decimal an integer; Jira numbers have any scale.
				p(` Scale="variable"`)
			case EdmDateTimeOffset:
				// Jira timestamps carry milliseconds; the default
				// precision (0) would tell clients to drop them.
				p(` Precision="3"`)
			}
			if pr.Doc == "" {
				p(`/>`, "\n")
				continue
			}
			p(`>`, "\n")
			p(`          <Annotation Term="Core.Description" String="`, attr(pr.Doc), `"/>`, "\n")
			p(`        </Property>`, "\n")
		}
		for _, r := range s.Relations {
			to, _ := s.Set(r.To)
			from, _ := s.Set(r.From)
			if r.From == es.Name {
				// Many to one: the referenced row always exists for a row
				// Jira showed, but may lie outside what the feed holds.
				p(`        <NavigationProperty Name="`, attr(r.Name), `" Type="`, attr(s.Namespace+"."+to.EntityType), `"`)
				if r.Partner != "" {
					p(` Partner="`, attr(r.Partner), `"`)
				}
				p(`>`, "\n")
				p(`          <ReferentialConstraint Property="`, attr(r.Property), `" ReferencedProperty="`, attr(r.ReferencedProperty), `"/>`, "\n")
				p(`        </NavigationProperty>`, "\n")
			}
			if r.To == es.Name && r.Partner != "" {
				p(`        <NavigationProperty Name="`, attr(r.Partner), `" Type="Collection(`, attr(s.Namespace+"."+from.EntityType), `)" Partner="`, attr(r.Name), `"/>`, "\n")
			}
		}
		p(`      </EntityType>`, "\n")
	}
	p(`      <EntityContainer Name="Container">`, "\n")
	for _, es := range s.Sets {
		p(`        <EntitySet Name="`, attr(es.Name), `" EntityType="`, attr(s.Namespace+"."+es.EntityType), `"`)
		var binds []Relation
		for _, r := range s.Relations {
			if r.From == es.Name || r.To == es.Name && r.Partner != "" {
				binds = append(binds, r)
			}
		}
		if len(binds) == 0 {
			p(`/>`, "\n")
			continue
		}
		p(`>`, "\n")
		for _, r := range binds {
			if r.From == es.Name {
				p(`          <NavigationPropertyBinding Path="`, attr(r.Name), `" Target="`, attr(r.To), `"/>`, "\n")
			}
			if r.To == es.Name && r.Partner != "" {
				p(`          <NavigationPropertyBinding Path="`, attr(r.Partner), `" Target="`, attr(r.From), `"/>`, "\n")
			}
		}
		p(`        </EntitySet>`, "\n")
	}
	p(`      </EntityContainer>`, "\n")
	p(`    </Schema>`, "\n")
	p(`  </edmx:DataServices>`, "\n")
	p(`</edmx:Edmx>`, "\n")
	return bw.Flush()
}

func (s Service) hasDocs() bool {
	for _, es := range s.Sets {
		for _, p := range es.Properties {
			if p.Doc != "" {
				return true
			}
		}
	}
	return false
}

// attr escapes s for an XML attribute value. Characters XML 1.0 cannot carry
// at all (most C0 controls) become U+FFFD rather than breaking the document.
func attr(s string) string {
	var b strings.Builder
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r != 0xFFFE && r != 0xFFFF {
			return r
		}
		return '\uFFFD'
	}, s)
	_ = xml.EscapeText(&b, []byte(s)) // escapes & < > " ' and \t \n \r
	return b.String()
}

// WriteServiceDocument writes the JSON service document: the list of entity
// sets. contextURL is the absolute URL of $metadata, e.g.
// "https://ferry.example/odata/src1/$metadata".
func (s Service) WriteServiceDocument(w io.Writer, contextURL string) error {
	type entry struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
		URL  string `json:"url"`
	}
	doc := struct {
		Context string  `json:"@odata.context"`
		Value   []entry `json:"value"`
	}{Context: contextURL, Value: []entry{}}
	for _, es := range s.Sets {
		doc.Value = append(doc.Value, entry{Name: es.Name, Kind: "EntitySet", URL: es.Name})
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
