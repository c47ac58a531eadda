package odata

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetadataGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := service.WriteMetadata(&buf); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(buf.Bytes(), new(struct{})); err != nil {
		t.Fatalf("not well-formed XML: %v", err)
	}
	goldenText(t, "metadata.xml", buf.Bytes())
}

func goldenText(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n%s", name, got)
	}
}

func TestServiceDocument(t *testing.T) {
	var buf bytes.Buffer
	if err := service.WriteServiceDocument(&buf, "https://f.example/odata/s1/$metadata"); err != nil {
		t.Fatal(err)
	}
	want := `{"@odata.context":"https://f.example/odata/s1/$metadata","value":[{"name":"Issues","kind":"EntitySet","url":"Issues"},{"name":"Changelog","kind":"EntitySet","url":"Changelog"}]}`
	if strings.TrimSpace(buf.String()) != want {
		t.Fatal(buf.String())
	}
}

func TestValidateRefusesBrokenModels(t *testing.T) {
	mod := func(f func(s *Service)) Service {
		s := Service{Namespace: "Ferry", Sets: []EntitySet{issues}}
		s.Sets[0].Properties = append([]Property(nil), issues.Properties...)
		f(&s)
		return s
	}
	for name, s := range map[string]Service{
		"no namespace":       mod(func(s *Service) { s.Namespace = "" }),
		"reserved namespace": mod(func(s *Service) { s.Namespace = "Edm" }),
		"bad namespace":      mod(func(s *Service) { s.Namespace = "Ferry..X" }),
		"no sets":            {Namespace: "Ferry"},
		"no key":             mod(func(s *Service) { s.Sets[0].Key = nil }),
		"key not property":   mod(func(s *Service) { s.Sets[0].Key = []string{"Nope"} }),
		"nullable key":       mod(func(s *Service) { s.Sets[0].Key = []string{"Summary"} }),
		"collection key":     mod(func(s *Service) { s.Sets[0].Key = []string{"Labels"} }),
		"bad name":           mod(func(s *Service) { s.Sets[0].Properties[2].Name = "Story Points" }),
		"digit first":        mod(func(s *Service) { s.Sets[0].Properties[2].Name = "1st" }),
		"duplicate by case":  mod(func(s *Service) { s.Sets[0].Properties[2].Name = "KEY" }),
		"unknown type":       mod(func(s *Service) { s.Sets[0].Properties[2].Type = "Edm.Guid" }),
		"sortable list":      mod(func(s *Service) { s.Sets[0].Properties[11].Sortable = true }),
		"duplicate set":      mod(func(s *Service) { s.Sets = append(s.Sets, s.Sets[0]) }),
		"relation to nowhere": mod(func(s *Service) {
			s.Relations = []Relation{{Name: "Parent", From: "Issues", Property: "Id", To: "Epics", ReferencedProperty: "Id"}}
		}),
		"relation across types": mod(func(s *Service) {
			s.Relations = []Relation{{Name: "Self", From: "Issues", Property: "Key", To: "Issues", ReferencedProperty: "Id"}}
		}),
		"relation named as a property": mod(func(s *Service) {
			s.Relations = []Relation{{Name: "Summary", From: "Issues", Property: "Id", To: "Issues", ReferencedProperty: "Id"}}
		}),
		"partner named as a property": mod(func(s *Service) {
			s.Relations = []Relation{{Name: "Self", From: "Issues", Property: "Id", To: "Issues", ReferencedProperty: "Id", Partner: "Key"}}
		}),
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.WriteMetadata(&buf); err == nil || buf.Len() != 0 {
				t.Fatalf("accepted (%d bytes written): %v", buf.Len(), err)
			}
		})
	}
}

func TestPropertyName(t *testing.T) {
	for in, want := range map[string]string{
		"Story Points":     "StoryPoints",
		"story points":     "StoryPoints",
		"Epic Link":        "EpicLink",
		"1st Response":     "_1stResponse",
		"Σ Time Spent":     "ΣTimeSpent",
		"Développeur":      "Développeur",
		"Time to SLA (h)":  "TimeToSLAH",
		"cf[10010]":        "Cf10010",
		"snake_case_name":  "SnakeCaseName",
		"???":              "Field",
		"":                 "Field",
		"a\xffb":           "AB",
		"emoji 🚀 rocket":   "EmojiRocket",
		"$dollar @at #sha": "DollarAtSha",
	} {
		got := PropertyName(in)
		if got != want {
			t.Errorf("PropertyName(%q) = %q, want %q", in, got, want)
		}
		if !ValidIdentifier(got) {
			t.Errorf("PropertyName(%q) = %q is not a SimpleIdentifier", in, got)
		}
	}
	long := PropertyName(strings.Repeat("ab ", 100))
	if !ValidIdentifier(long) {
		t.Fatalf("long name %q", long)
	}
}

func TestNamerKeepsNamesUnique(t *testing.T) {
	n := NewNamer("Key", "Summary")
	got := []string{n.Name("Summary"), n.Name("summary"), n.Name("Story Points"), n.Name("story-points"), n.Name("Key"), n.Name(strings.Repeat("x", 200)), n.Name(strings.Repeat("x", 200))}
	want := []string{"Summary_2", "Summary_3", "StoryPoints", "StoryPoints_2", "Key_2", "X" + strings.Repeat("x", 127), "X" + strings.Repeat("x", 125) + "_2"}
	for i := range want {
		if got[i] != want[i] || !ValidIdentifier(got[i]) {
			t.Fatalf("name %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestMetadataPassesOASISConverter runs the OASIS odata-csdl converter
// (interop/node_modules) on $metadata and fails on any message it reports.
func TestMetadataPassesOASISConverter(t *testing.T) {
	node, err := exec.LookPath("node")
	modules, _ := filepath.Abs("../../../interop/node_modules")
	if _, statErr := os.Stat(filepath.Join(modules, "odata-csdl")); err != nil || statErr != nil {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatalf("node or interop/node_modules/odata-csdl missing (node: %v, module: %v)", err, statErr)
		}
		t.Skip("node or interop/node_modules/odata-csdl missing; run npm ci in interop/ (FERRY_REQUIRE_INTEROP=1 makes this fail)")
	}
	withDocs := service
	for name, s := range map[string]Service{"representative": withDocs, "no docs": {Namespace: "Jira.Feeds", Sets: []EntitySet{changelog}}, "relations": related} {
		t.Run(name, func(t *testing.T) {
			var xmlDoc bytes.Buffer
			if err := s.WriteMetadata(&xmlDoc); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(node, filepath.Join("testdata", "csdl_check.js"))
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			cmd.Stdin = &xmlDoc
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			if runErr != nil || stderr.Len() > 0 || strings.Contains(strings.ToLower(stdout.String()), "warn") {
				t.Fatalf("odata-csdl: %v\n%s\n%s", runErr, stderr.String(), xmlDoc.String())
			}
			var j map[string]any
			if err := json.Unmarshal(stdout.Bytes(), &j); err != nil {
				t.Fatalf("converter output: %v", err)
			}
			if name == "relations" {
				// What a client reads of the relations, through the OASIS
				// converter: the constraint and the partner collection.
				ferry := j["Ferry"].(map[string]any)
				nav := ferry["Worklog"].(map[string]any)["Issue"].(map[string]any)
				if nav["$Type"] != "Ferry.Issue" || nav["$Partner"] != "Worklogs" || nav["$ReferentialConstraint"].(map[string]any)["IssueId"] != "Id" {
					t.Fatalf("Worklog.Issue: %v", nav)
				}
				back := ferry["Issue"].(map[string]any)["Worklogs"].(map[string]any)
				if back["$Type"] != "Ferry.Worklog" || back["$Collection"] != true || back["$Partner"] != "Issue" {
					t.Fatalf("Issue.Worklogs: %v", back)
				}
			}
			if name == "representative" {
				issue := j["Ferry"].(map[string]any)["Issue"].(map[string]any)
				labels := issue["Labels"].(map[string]any)
				if labels["$Collection"] != true {
					t.Fatalf("Labels: %v", labels)
				}
				if created := issue["Created"].(map[string]any); created["$Type"] != "Edm.DateTimeOffset" || created["$Precision"] != 3.0 {
					t.Fatalf("Created: %v", created)
				}
			}
		})
	}
}

// TestMetadataValidatesAgainstOASISSchema validates $metadata against the
// OASIS EDMX/EDM XML schemas shipped with odata-csdl, using the JDK's XSD
// validator (a stricter check than the converter: facet values, element
// order, identifier patterns).
func TestMetadataValidatesAgainstOASISSchema(t *testing.T) {
	java, err := exec.LookPath("java")
	xsd, _ := filepath.Abs("../../../interop/node_modules/odata-csdl/schemas/edmx.xsd")
	if _, statErr := os.Stat(xsd); err != nil || statErr != nil {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatalf("java or %s missing (java: %v, schema: %v)", xsd, err, statErr)
		}
		t.Skip("java or the OASIS schemas (interop/node_modules/odata-csdl) missing")
	}
	for _, s := range []Service{service, related} {
		var xmlDoc bytes.Buffer
		if err := s.WriteMetadata(&xmlDoc); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(java, filepath.Join("testdata", "XsdCheck.java"), xsd)
		cmd.Stdin = &xmlDoc
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("edmx.xsd: %v\n%s\n%s", err, out, xmlDoc.String())
		}
	}
}
