package odata

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		format, accept string
		want           Media
		status         int
	}{
		{"", "", Media{Metadata: MetadataMinimal}, 0},
		{"", "application/json", Media{Metadata: MetadataMinimal}, 0},
		{"", "*/*", Media{Metadata: MetadataMinimal}, 0},
		{"", "application/json;odata.metadata=none", Media{Metadata: MetadataNone}, 0},
		{"", "application/json;odata.metadata=full;IEEE754Compatible=true", Media{Metadata: MetadataFull, IEEE754: true}, 0},
		{"", "application/xml;q=0.9, application/json;odata.metadata=none;q=0.5", Media{Metadata: MetadataNone}, 0},
		{"", "*/*;q=0.1, application/json;odata.metadata=full", Media{Metadata: MetadataFull}, 0},
		{"", "application/json;odata.streaming=true;charset=utf-8;foo=bar", Media{Metadata: MetadataMinimal}, 0}, // unknown Accept parameters are ignored
		{"", "application/xml", Media{}, 406},
		{"", "text/csv, text/html", Media{}, 406},
		{"", "application/json;q=0", Media{}, 406},
		{"", "application/json;odata.metadata=partial", Media{}, 406},
		{"json", "application/xml", Media{Metadata: MetadataMinimal}, 0}, // $format wins over Accept
		{"application/json;odata.metadata=none", "application/json;odata.metadata=full", Media{Metadata: MetadataNone}, 0},
		{"application/json;IEEE754Compatible=true", "", Media{Metadata: MetadataMinimal, IEEE754: true}, 0},
		{"xml", "", Media{}, 406},
	} {
		m, err := Negotiate(Query{Format: tc.format}, tc.accept)
		if tc.status != 0 {
			wantError(t, err, tc.status, "")
			continue
		}
		if err != nil || m != tc.want {
			t.Errorf("$format=%q Accept %q: %+v %v, want %+v", tc.format, tc.accept, m, err, tc.want)
		}
	}
	for _, tc := range []struct {
		format, accept string
		ok             bool
	}{{"", "", true}, {"", "application/xml", true}, {"", "*/*", true}, {"xml", "", true}, {"", "application/json", false}, {"json", "", false}} {
		if err := NegotiateMetadata(Query{Format: tc.format}, tc.accept); (err == nil) != tc.ok {
			t.Errorf("$metadata $format=%q Accept %q: %v", tc.format, tc.accept, err)
		}
	}
}

func TestRowWriterMetadataLevels(t *testing.T) {
	q, _ := ParseQuery("$select=Id,StoryPoints,Labels,Created", issues, 0)
	page := func(m Media) map[string]any {
		var buf bytes.Buffer
		rw := NewRowWriter(&buf, ContextURL("https://f.example/odata/s1", issues, q), q.Columns(issues))
		rw.SetMedia(m, issues, "Ferry")
		rw.WriteCount(2)
		rw.WriteRow(rowOne)
		rw.Close("https://f.example/next")
		var out map[string]any
		if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
			t.Fatalf("%+v: %v: %s", m, err, buf.Bytes())
		}
		return out
	}
	none := page(Media{Metadata: MetadataNone})
	if _, ok := none["@odata.context"]; ok || none["@odata.count"] != 2.0 || none["@odata.nextLink"] == nil {
		t.Errorf("none: %v", none)
	}
	full := page(Media{Metadata: MetadataFull})
	row := full["value"].([]any)[0].(map[string]any)
	if full["@odata.context"] == nil || row["@odata.type"] != "#Ferry.Issue" || row["@odata.id"] != "Issues('PROJ-1')" ||
		row["Id@odata.type"] != "#Int64" || row["StoryPoints@odata.type"] != "#Decimal" || row["Labels@odata.type"] != "#Collection(String)" ||
		row["Created@odata.type"] != "#DateTimeOffset" || row["Key@odata.type"] != nil {
		t.Errorf("full: %v", row)
	}
	ieee := page(Media{Metadata: MetadataMinimal, IEEE754: true})
	row = ieee["value"].([]any)[0].(map[string]any)
	if ieee["@odata.count"] != "2" || row["Id"] != "10001" || row["StoryPoints"] != "2.5" {
		t.Errorf("IEEE754Compatible: %v", ieee)
	}
	var buf bytes.Buffer
	if err := WriteEntity(&buf, EntityContextURL("https://f.example/odata/s1", issues, q), q.Columns(issues), rowOne, Media{Metadata: MetadataMinimal}, issues, "Ferry"); err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(buf.Bytes(), &e); err != nil || e["Key"] != "PROJ-1" || !strings.HasSuffix(e["@odata.context"].(string), "#Issues(Id,StoryPoints,Labels,Created)/$entity") {
		t.Errorf("entity: %v %s", err, buf.Bytes())
	}
}
