package export

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// The field-shape test: every kind of field Jira's GET /rest/api/3/field
// lists, with a value shaped as Jira sends it in an issue, through the
// Issues table's $metadata, its OData row and its CSV row. Field
// definitions and values come from Atlassian's OpenAPI spec (its examples)
// and Jira's documentation, never from the simulator, so a shape the
// simulator gets wrong cannot hide a wrong mapping.

// specPath is Atlassian's Jira platform spec, beside the repository.
func specPath(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "specs", "jira-cloud-platform-v3.openapi.json")
}

var (
	specOnce sync.Once
	specDoc  map[string]any
	specErr  error
)

func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	p := specPath(t)
	specOnce.Do(func() {
		var b []byte
		if b, specErr = os.ReadFile(p); specErr == nil {
			specErr = json.Unmarshal(b, &specDoc)
		}
	})
	if specErr != nil {
		if os.IsNotExist(specErr) && os.Getenv("FERRY_REQUIRE_INTEROP") != "1" {
			t.Skipf("Jira OpenAPI spec not found at %s (set FERRY_REQUIRE_INTEROP=1 to make this fatal)", p)
		}
		t.Fatal(specErr)
	}
	return specDoc
}

// dig walks a decoded JSON tree by object keys and array indexes ("0").
func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				t.Fatalf("spec: no %q in %v", k, path)
			}
		case []any:
			var i int
			fmt.Sscan(k, &i)
			v = x[i]
		default:
			t.Fatalf("spec: cannot take %q in %v", k, path)
		}
	}
	return v
}

// example is the JSON example of an operation's 200 answer, then dug
// into along path.
func example(t *testing.T, op string, path ...string) string {
	t.Helper()
	method, p, _ := strings.Cut(op, " ")
	ex := dig(t, loadSpec(t), "paths", p, strings.ToLower(method), "responses", "200", "content", "application/json", "example")
	var v any
	if err := json.Unmarshal([]byte(ex.(string)), &v); err != nil {
		t.Fatalf("spec example of %s: %v", op, err)
	}
	b, err := json.Marshal(dig(t, v, path...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// specCustomTypes are the built-in custom field types the spec lists
// (CustomFieldDefinitionJsonBean.type): "cascadingselect", "datepicker"…
func specCustomTypes(t *testing.T) []string {
	desc := dig(t, loadSpec(t), "components", "schemas", "CustomFieldDefinitionJsonBean", "properties", "type", "description").(string)
	var out []string
	for _, m := range regexp.MustCompile("(?m)^ \\*  `([a-z]+)`:").FindAllStringSubmatch(desc, -1) {
		out = append(out, m[1])
	}
	if len(out) < 20 {
		t.Fatalf("spec lists %d custom field types; the description changed shape: %q", len(out), desc)
	}
	return out
}

// wantCol is one expected column: its name, $metadata type, OData value
// (JSON) and CSV field (raw, as it stands between the commas).
type wantCol struct {
	name, typ, odata, csv string
}

type shapeCase struct {
	field  string // FieldDetails as GET /rest/api/3/field lists it
	value  string // the field's value in an issue; "" for none
	want   []wantCol
	reason string // when not exportable: a word of the reason
	fold   *odata.FoldKind
}

func fold(k odata.FoldKind) *odata.FoldKind { return &k }

const cft = "com.atlassian.jira.plugin.system.customfieldtypes:"

// custom is the FieldDetails of a custom field of a built-in type.
func custom(id int, name, typ, items, kind string) string {
	it := ""
	if items != "" {
		it = `,"items":"` + items + `"`
	}
	return fmt.Sprintf(`{"id":"customfield_%d","key":"customfield_%d","name":%q,"custom":true,"orderable":true,"navigable":true,"searchable":true,`+
		`"clauseNames":["cf[%d]",%q],"schema":{"type":%q%s,"custom":%q,"customId":%d}}`, id, id, name, id, name, typ, it, kind, id)
}

// system is the FieldDetails of a system field.
func system(id, name, typ, items string, clauses ...string) string {
	it := ""
	if items != "" {
		it = `,"items":"` + items + `"`
	}
	cl, _ := json.Marshal(clauses)
	if clauses == nil {
		cl = []byte("[]")
	}
	return fmt.Sprintf(`{"id":%q,"key":%q,"name":%q,"custom":false,"orderable":true,"navigable":true,"searchable":true,"clauseNames":%s,"schema":{"type":%q%s,"system":%q}}`,
		id, id, name, cl, typ, it, id)
}

func shapeCases(t *testing.T) []shapeCase {
	user := example(t, "GET /rest/api/3/user")                     // carries emailAddress "mia@example.com"
	option := example(t, "GET /rest/api/3/customFieldOption/{id}") // {"value":"To Do"}
	versions := example(t, "GET /rest/api/3/project/{projectIdOrKey}/versions")
	issue := func(path string) string {
		return example(t, "GET /rest/api/3/issue/{issueIdOrKey}", append([]string{"fields"}, strings.Split(path, "/")...)...)
	}
	group := `{"groupId":"276f955c-63d7-42c8-9520-92d01dca0625","name":"jira-administrators","self":"https://your-domain.atlassian.net/rest/api/3/group?groupId=276f955c-63d7-42c8-9520-92d01dca0625"}`
	adf := `{"type":"doc","version":1,"content":[` +
		`{"type":"heading","attrs":{"level":2},"content":[{"type":"text","text":"Steps"}]},` +
		`{"type":"paragraph","content":[{"type":"text","text":"Ask "},{"type":"mention","attrs":{"id":"5b10a2844c20165700ede21g","text":"@Mia Krystof","accessLevel":""}},` +
		`{"type":"text","text":" "},{"type":"emoji","attrs":{"shortName":":smile:","id":"1f604","text":"😄"}},{"type":"hardBreak"},{"type":"text","text":"due ","marks":[{"type":"strong"}]},` +
		`{"type":"date","attrs":{"timestamp":"1719187200000"}},{"type":"text","text":" "},{"type":"status","attrs":{"text":"BLOCKED","color":"red","localId":"a"}}]},` +
		`{"type":"bulletList","content":[{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"text","text":"one"}]}]},` +
		`{"type":"listItem","content":[{"type":"paragraph","content":[{"type":"inlineCard","attrs":{"url":"https://example.com/x"}}]}]}]},` +
		`{"type":"rule"},{"type":"codeBlock","attrs":{"language":"sql"},"content":[{"type":"text","text":"SELECT 1"}]}]}`
	adfText := "Steps\nAsk @Mia Krystof 😄\ndue 2024-06-24 BLOCKED\none\nhttps://example.com/x\n\nSELECT 1"
	adfCSV := `"` + adfText + `"`
	sla := func(cycle string) string {
		return `{"id":"2","name":"Time to resolution","_links":{"self":"https://your-domain.atlassian.net/rest/servicedeskapi/request/10010/sla/2"},` +
			cycle + `,"slaDisplayFormat":"NEW_SLA_FORMAT"}`
	}
	tm := func(iso string, ms int64) string {
		return fmt.Sprintf(`{"iso8601":%q,"jira":%q,"friendly":"Today 10:00 AM","epochMillis":%d}`, iso, iso, ms)
	}
	dur := func(ms int64) string { return fmt.Sprintf(`{"millis":%d,"friendly":"%dm"}`, ms, ms/60000) }
	ongoing := `"completedCycles":[],"ongoingCycle":{"startTime":` + tm("2024-06-24T10:00:00+1000", 1719187200000) +
		`,"breachTime":` + tm("2024-06-24T18:00:00+1000", 1719216000000) + `,"breached":false,"paused":false,"withinCalendarHours":true,` +
		`"goalDuration":` + dur(28800000) + `,"elapsedTime":` + dur(5400000) + `,"remainingTime":` + dur(23400000) + `}`
	completed := `"completedCycles":[{"startTime":` + tm("2024-06-20T10:00:00+1000", 1718841600000) + `,"stopTime":` + tm("2024-06-20T12:00:00+1000", 1718848800000) +
		`,"breached":false,"goalDuration":` + dur(14400000) + `,"elapsedTime":` + dur(7200000) + `,"remainingTime":` + dur(7200000) + `},` +
		`{"startTime":` + tm("2024-06-21T10:00:00+1000", 1718928000000) + `,"stopTime":` + tm("2024-06-21T16:30:00+1000", 1718951400000) +
		`,"breachTime":` + tm("2024-06-21T14:00:00+1000", 1718942400000) + `,"breached":true,"goalDuration":` + dur(14400000) +
		`,"elapsedTime":` + dur(23400500) + `,"remainingTime":` + dur(-9000500) + `}]`

	return []shapeCase{
		// ---- system fields (Jira's field reference) ----
		{field: system("summary", "Summary", "string", "", "summary"), value: `"Fix \"login\", then =SUM(1)"`,
			want: []wantCol{{"Summary", "Edm.String", `"Fix \"login\", then =SUM(1)"`, `"Fix ""login"", then =SUM(1)"`}}, fold: fold(odata.FoldPresence)},
		{field: system("description", "Description", "string", "", "description"), value: adf,
			want: []wantCol{{"Description", "Edm.String", mustJSON(adfText), adfCSV}}},
		{field: system("environment", "Environment", "string", "", "environment"), value: `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"Chrome 126"}]}]}`,
			want: []wantCol{{"Environment", "Edm.String", `"Chrome 126"`, `Chrome 126`}}},
		{field: system("status", "Status", "status", "", "status"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/status/3","description":"","iconUrl":"https://your-domain.atlassian.net/images/icons/statuses/inprogress.png","name":"In Progress","id":"3","statusCategory":{"self":"https://your-domain.atlassian.net/rest/api/3/statuscategory/4","id":4,"key":"indeterminate","colorName":"yellow","name":"In Progress"}}`,
			want: []wantCol{{"Status", "Edm.String", `"In Progress"`, `In Progress`}}, fold: fold(odata.FoldName)},
		{field: system("statusCategory", "Status Category", "statusCategory", "", "statusCategory"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/statuscategory/3","id":3,"key":"done","colorName":"green","name":"Done"}`,
			want: []wantCol{{"StatusCategory", "Edm.String", `"Done"`, `Done`}}},
		{field: system("priority", "Priority", "priority", "", "priority"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/priority/2","iconUrl":"https://your-domain.atlassian.net/images/icons/priorities/high.svg","name":"High","id":"2"}`,
			want: []wantCol{{"Priority", "Edm.String", `"High"`, `High`}}, fold: fold(odata.FoldName)},
		{field: system("resolution", "Resolution", "resolution", "", "resolution"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/resolution/10000","id":"10000","description":"Work has been completed on this issue.","name":"Done"}`,
			want: []wantCol{{"Resolution", "Edm.String", `"Done"`, `Done`}}, fold: fold(odata.FoldName)},
		{field: system("issuetype", "Issue Type", "issuetype", "", "issuetype", "type"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/issuetype/10003","id":"10003","description":"A small piece of work.","iconUrl":"https://your-domain.atlassian.net/icon.svg","name":"Subtask","subtask":true,"avatarId":10316,"hierarchyLevel":-1}`,
			want: []wantCol{{"IssueType", "Edm.String", `"Subtask"`, `Subtask`}, {"IsSubtask", "Edm.Boolean", `true`, `true`}}, fold: fold(odata.FoldName)},
		{field: system("project", "Project", "project", "", "project"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/project/10000","id":"10000","key":"ED","name":"Edison","projectTypeKey":"software","simplified":false,"avatarUrls":{}}`,
			want: []wantCol{{"Project", "Edm.String", `"ED"`, `ED`}}, fold: fold(odata.FoldName)},
		{field: system("assignee", "Assignee", "user", "", "assignee"), value: user,
			want: []wantCol{{"Assignee", "Edm.String", `"Mia Krystof"`, `Mia Krystof`}}, fold: fold(odata.FoldPresence)},
		{field: system("reporter", "Reporter", "user", "", "reporter"), value: `null`,
			want: []wantCol{{"Reporter", "Edm.String", `null`, ``}}, fold: fold(odata.FoldPresence)},
		{field: system("creator", "Creator", "user", "", "creator"), value: user,
			want: []wantCol{{"Creator", "Edm.String", `"Mia Krystof"`, `Mia Krystof`}}},
		{field: system("created", "Created", "datetime", "", "created", "createdDate"), value: `"2024-06-24T19:24:50.123+1000"`,
			want: []wantCol{{"Created", "Edm.DateTimeOffset", `"2024-06-24T09:24:50.123Z"`, `2024-06-24T09:24:50.123Z`}}, fold: fold(odata.FoldDateTime)},
		{field: system("lastViewed", "Last Viewed", "datetime", "", "lastViewed"), value: `"2024-06-24T19:24:50.000+0000"`,
			want: []wantCol{{"LastViewed", "Edm.DateTimeOffset", `"2024-06-24T19:24:50Z"`, `2024-06-24T19:24:50Z`}}},
		{field: system("duedate", "Due date", "date", "", "due", "duedate"), value: `"2024-07-01"`,
			want: []wantCol{{"DueDate", "Edm.Date", `"2024-07-01"`, `2024-07-01`}}, fold: fold(odata.FoldExact)},
		{field: system("labels", "Labels", "array", "string", "labels"), value: `["a;b","back\\slash","=cmd",""]`,
			want: []wantCol{{"Labels", "Collection(Edm.String)", `["a;b","back\\slash","=cmd"]`, `a\;b; back\\slash; '=cmd`}}},
		{field: system("components", "Components", "array", "component", "component"), value: `[{"self":"https://your-domain.atlassian.net/rest/api/3/component/10000","id":"10000","name":"Backend"},{"self":"https://your-domain.atlassian.net/rest/api/3/component/10001","id":"10001","name":"UI, web"}]`,
			want: []wantCol{{"Components", "Collection(Edm.String)", `["Backend","UI, web"]`, `"Backend; UI, web"`}}},
		{field: system("fixVersions", "Fix versions", "array", "version", "fixVersion"), value: versions,
			want: []wantCol{{"FixVersions", "Collection(Edm.String)", `["New Version 1","Next Version"]`, `New Version 1; Next Version`}}},
		{field: system("versions", "Affects versions", "array", "version", "affectedVersion"), value: `[]`,
			want: []wantCol{{"AffectsVersions", "Collection(Edm.String)", `[]`, ``}}},
		{field: system("attachment", "Attachment", "array", "attachment", "attachments"),
			value: "[" + issue("attachment/0") + "," + strings.Replace(strings.Replace(issue("attachment/0"), `"picture.jpg"`, `"log; 2.txt"`, 1), `23123`, `7`, 1) + "]",
			want: []wantCol{{"AttachmentNames", "Collection(Edm.String)", `["picture.jpg","log; 2.txt"]`, `picture.jpg; log\; 2.txt`},
				{"AttachmentSizes", "Collection(Edm.Int64)", `[23123,7]`, `23123; 7`}}},
		{field: system("comment", "Comment", "comments-page", "", "comment"), value: example(t, "GET /rest/api/3/issue/{issueIdOrKey}/comment"),
			want: []wantCol{{"CommentCount", "Edm.Int64", `1`, `1`}}},
		{field: system("worklog", "Log Work", "array", "worklog"), value: example(t, "GET /rest/api/3/issue/{issueIdOrKey}/worklog"),
			reason: "Worklogs table"},
		{field: system("issuelinks", "Linked Issues", "array", "issuelinks", "issueLink"), value: issue("sub-tasks"),
			reason: "IssueLinks table"},
		{field: system("subtasks", "Sub-tasks", "array", "issuelinks", "subtasks"), value: `[{"id":"10003","key":"ED-2","self":"https://your-domain.atlassian.net/rest/api/3/issue/10003","fields":{"summary":"Child","status":{"name":"Open"}}}]`,
			want: []wantCol{{"SubTasks", "Collection(Edm.String)", `["ED-2"]`, `ED-2`}}},
		{field: `{"id":"parent","key":"parent","name":"Parent","custom":false,"orderable":false,"navigable":true,"searchable":false,"clauseNames":["parent"]}`,
			value: `{"id":"10000","key":"ED-1","self":"https://your-domain.atlassian.net/rest/api/3/issue/10000","fields":{"summary":"Epic"}}`,
			want:  []wantCol{{"Parent", "Edm.String", `"ED-1"`, `ED-1`}}},
		{field: `{"id":"issuekey","key":"issuekey","name":"Key","custom":false,"orderable":false,"navigable":true,"searchable":false,"clauseNames":["id","issue","issuekey","key"]}`,
			reason: "Key and Id columns"},
		{field: `{"id":"thumbnail","key":"thumbnail","name":"Images","custom":false,"orderable":false,"navigable":true,"searchable":false,"clauseNames":[]}`,
			reason: "not values"},
		{field: system("timetracking", "Time tracking", "timetracking", ""), value: issue("timetracking"),
			want: []wantCol{{"TimeTrackingOriginalSeconds", "Edm.Int64", `600`, `600`}, {"TimeTrackingRemainingSeconds", "Edm.Int64", `200`, `200`}, {"TimeTrackingSpentSeconds", "Edm.Int64", `400`, `400`}}},
		{field: system("timetracking", "Time tracking", "timetracking", ""), value: `{}`, // no estimate, nothing logged
			want: []wantCol{{"TimeTrackingOriginalSeconds", "Edm.Int64", `null`, ``}, {"TimeTrackingRemainingSeconds", "Edm.Int64", `null`, ``}, {"TimeTrackingSpentSeconds", "Edm.Int64", `null`, ``}}},
		{field: system("timeoriginalestimate", "Original estimate", "number", "", "originalEstimate", "timeoriginalestimate"), value: `600`,
			want: []wantCol{{"OriginalEstimate", "Edm.Decimal", `600`, `600`}}, fold: fold(odata.FoldNone)}, // JQL reads durations, not seconds
		{field: system("aggregatetimespent", "Σ Time Spent", "number", ""), value: `12000`,
			want: []wantCol{{"ΣTimeSpent", "Edm.Decimal", `12000`, `12000`}}},
		{field: system("progress", "Progress", "progress", ""), value: `{"progress":3600,"total":14400,"percent":25}`,
			want: []wantCol{{"ProgressSeconds", "Edm.Int64", `3600`, `3600`}, {"ProgressTotalSeconds", "Edm.Int64", `14400`, `14400`}, {"ProgressPercent", "Edm.Int64", `25`, `25`}}},
		{field: system("aggregateprogress", "Σ Progress", "progress", ""), value: `{"progress":0,"total":0}`, // Jira leaves out percent when there is no total
			want: []wantCol{{"ΣProgressSeconds", "Edm.Int64", `0`, `0`}, {"ΣProgressTotalSeconds", "Edm.Int64", `0`, `0`}, {"ΣProgressPercent", "Edm.Int64", `null`, ``}}},
		{field: system("votes", "Votes", "votes", "", "votes"), value: example(t, "GET /rest/api/3/issue/{issueIdOrKey}/votes"),
			want: []wantCol{{"Votes", "Edm.Int64", `24`, `24`}}},
		{field: system("watches", "Watchers", "watches", "", "watchers"), value: issue("watcher"),
			want: []wantCol{{"Watchers", "Edm.Int64", `1`, `1`}}},
		{field: system("security", "Security Level", "securitylevel", "", "level"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/securitylevel/10000","id":"10000","description":"Staff only","name":"Staff"}`,
			want: []wantCol{{"SecurityLevel", "Edm.String", `"Staff"`, `Staff`}}, fold: fold(odata.FoldName)},
		{field: system("issuerestriction", "Restrict to", "issuerestriction", ""), value: `{"issuerestrictions":{},"shouldDisplay":false}`,
			reason: "access settings"},

		// ---- the built-in custom field types the spec lists ----
		{field: custom(10100, "Category", "option-with-child", "", cft+"cascadingselect"),
			value: `{"self":"https://your-domain.atlassian.net/rest/api/3/customFieldOption/10100","value":"Hardware","id":"10100","child":{"self":"https://your-domain.atlassian.net/rest/api/3/customFieldOption/10102","value":"Laptop","id":"10102"}}`,
			want:  []wantCol{{"Category", "Edm.String", `"Hardware / Laptop"`, `Hardware / Laptop`}}},
		{field: custom(10101, "Area", "option-with-child", "", cft+"cascadingselect"),
			value: `{"self":"https://your-domain.atlassian.net/rest/api/3/customFieldOption/10100","value":"Hardware","id":"10100"}`,
			want:  []wantCol{{"Area", "Edm.String", `"Hardware"`, `Hardware`}}},
		{field: custom(10102, "Review Date", "date", "", cft+"datepicker"), value: `"2024-06-30"`,
			want: []wantCol{{"ReviewDate", "Edm.Date", `"2024-06-30"`, `2024-06-30`}}, fold: fold(odata.FoldExact)},
		{field: custom(10103, "Go-Live", "datetime", "", cft+"datetime"), value: `"2024-06-30T09:00:00.000-0700"`,
			want: []wantCol{{"GoLive", "Edm.DateTimeOffset", `"2024-06-30T16:00:00Z"`, `2024-06-30T16:00:00Z`}}, fold: fold(odata.FoldDateTime)},
		{field: custom(10104, "Story Points", "number", "", cft+"float"), value: `2.5`,
			want: []wantCol{{"StoryPoints", "Edm.Decimal", `2.5`, `2.5`}}, fold: fold(odata.FoldExact)},
		{field: custom(10105, "Owning group", "group", "", cft+"grouppicker"), value: group,
			want: []wantCol{{"OwningGroup", "Edm.String", `"jira-administrators"`, `jira-administrators`}}},
		{field: custom(10106, "Import Id", "number", "", cft+"importid"), value: `4711`,
			want: []wantCol{{"ImportId", "Edm.Decimal", `4711`, `4711`}}},
		{field: custom(10107, "Keywords", "array", "string", cft+"labels"), value: `["alpha","beta"]`,
			want: []wantCol{{"Keywords", "Collection(Edm.String)", `["alpha","beta"]`, `alpha; beta`}}},
		{field: custom(10108, "Checks", "array", "option", cft+"multicheckboxes"), value: "[" + option + `,{"self":"https://your-domain.atlassian.net/rest/api/3/customFieldOption/10001","value":"Done","id":"10001"}]`,
			want: []wantCol{{"Checks", "Collection(Edm.String)", `["To Do","Done"]`, `To Do; Done`}}},
		{field: custom(10109, "Groups", "array", "group", cft+"multigrouppicker"), value: "[" + group + "]",
			want: []wantCol{{"Groups", "Collection(Edm.String)", `["jira-administrators"]`, `jira-administrators`}}},
		{field: custom(10110, "Tags", "array", "option", cft+"multiselect"), value: "[" + option + "]",
			want: []wantCol{{"Tags", "Collection(Edm.String)", `["To Do"]`, `To Do`}}},
		{field: custom(10111, "Reviewers", "array", "user", cft+"multiuserpicker"), value: "[" + user + `,{"accountId":"5b10ac8d82e05b22cc7d4ef5","accountType":"atlassian","active":true,"displayName":"-Dash Doe","emailAddress":"dash@example.com"}]`,
			want: []wantCol{{"Reviewers", "Collection(Edm.String)", `["Mia Krystof","-Dash Doe"]`, `Mia Krystof; '-Dash Doe`}}},
		{field: custom(10112, "Found in", "array", "version", cft+"multiversion"), value: versions,
			want: []wantCol{{"FoundIn", "Collection(Edm.String)", `["New Version 1","Next Version"]`, `New Version 1; Next Version`}}},
		{field: custom(10113, "Related project", "project", "", cft+"project"), value: `{"self":"https://your-domain.atlassian.net/rest/api/3/project/10001","id":"10001","key":"MKY","name":"Monkey","projectTypeKey":"business","simplified":false}`,
			want: []wantCol{{"RelatedProject", "Edm.String", `"MKY"`, `MKY`}}, fold: fold(odata.FoldName)},
		{field: custom(10114, "Severity", "option", "", cft+"radiobuttons"), value: option,
			want: []wantCol{{"Severity", "Edm.String", `"To Do"`, `To Do`}}, fold: fold(odata.FoldName)},
		{field: custom(10115, "External id", "string", "", cft+"readonlyfield"), value: `"EXT-9"`,
			want: []wantCol{{"ExternalId", "Edm.String", `"EXT-9"`, `EXT-9`}}},
		{field: custom(10116, "Team", "option", "", cft+"select"), value: option,
			want: []wantCol{{"Team", "Edm.String", `"To Do"`, `To Do`}}, fold: fold(odata.FoldName)},
		{field: custom(10117, "Notes", "string", "", cft+"textarea"), value: adf,
			want: []wantCol{{"Notes", "Edm.String", mustJSON(adfText), adfCSV}}, fold: fold(odata.FoldPresence)},
		{field: custom(10118, "Code", "string", "", cft+"textfield"), value: `"+1 (555) 0100"`,
			want: []wantCol{{"Code", "Edm.String", `"+1 (555) 0100"`, `'+1 (555) 0100`}}},
		{field: custom(10119, "Website", "string", "", cft+"url"), value: `"https://example.com/a,b"`,
			want: []wantCol{{"Website", "Edm.String", `"https://example.com/a,b"`, `"https://example.com/a,b"`}}},
		{field: custom(10120, "Approver", "user", "", cft+"userpicker"), value: user,
			want: []wantCol{{"Approver", "Edm.String", `"Mia Krystof"`, `Mia Krystof`}}, fold: fold(odata.FoldPresence)},
		{field: custom(10121, "Target version", "version", "", cft+"version"), value: example(t, "GET /rest/api/3/project/{projectIdOrKey}/versions", "1"),
			want: []wantCol{{"TargetVersion", "Edm.String", `"Next Version"`, `Next Version`}}, fold: fold(odata.FoldName)},

		// ---- Jira Software and Jira Service Management fields ----
		{field: custom(10020, "Sprint", "array", "json", "com.pyxis.greenhopper.jira:gh-sprint"),
			value: `[{"id":1,"name":"Sprint 1","state":"closed","boardId":1,"goal":"","startDate":"2024-06-01T00:00:00.000Z","endDate":"2024-06-14T00:00:00.000Z","completeDate":"2024-06-14T01:00:00.000Z"},{"id":2,"name":"Sprint 2","state":"active","boardId":1,"goal":"Ship","startDate":"2024-06-15T00:00:00.000Z","endDate":"2024-06-28T00:00:00.000Z"}]`,
			want:  []wantCol{{"Sprint", "Collection(Edm.String)", `["Sprint 1","Sprint 2"]`, `Sprint 1; Sprint 2`}}},
		{field: custom(10014, "Epic Link", "any", "", "com.pyxis.greenhopper.jira:gh-epic-link"), value: `"ED-1"`,
			want: []wantCol{{"EpicLink", "Edm.String", `"ED-1"`, `ED-1`}}},
		{field: custom(10019, "Rank", "any", "", "com.pyxis.greenhopper.jira:gh-lexo-rank"), value: `"0|i0000f:"`,
			want: []wantCol{{"Rank", "Edm.String", `"0|i0000f:"`, `0|i0000f:`}}},
		{field: custom(10001, "Team (Atlassian)", "team", "", "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team"),
			value: `{"id":"36885b3c-1bf0-4f85-a357-c5b858c31de4","name":"Platform","avatarUrl":"","isVisible":true,"isVerified":false,"title":"Platform","isShared":true}`,
			want:  []wantCol{{"TeamAtlassian", "Edm.String", `"Platform"`, `Platform`}}},
		{field: custom(10030, "Time to resolution", "sd-servicelevelagreement", "", "com.atlassian.servicedesk:sd-sla-field"), value: sla(ongoing),
			want: []wantCol{{"TimeToResolutionElapsedSeconds", "Edm.Int64", `5400`, `5400`}, {"TimeToResolutionRemainingSeconds", "Edm.Int64", `23400`, `23400`}, {"TimeToResolutionBreached", "Edm.Boolean", `false`, `false`}}},
		{field: custom(10031, "Time to first response", "sd-servicelevelagreement", "", "com.atlassian.servicedesk:sd-sla-field"), value: sla(completed),
			want: []wantCol{{"TimeToFirstResponseElapsedSeconds", "Edm.Int64", `23400`, `23400`}, {"TimeToFirstResponseRemainingSeconds", "Edm.Int64", `-9000`, `-9000`}, {"TimeToFirstResponseBreached", "Edm.Boolean", `true`, `true`}}},
		{field: custom(10032, "Time to done", "sd-servicelevelagreement", "", "com.atlassian.servicedesk:sd-sla-field"), value: sla(`"completedCycles":[]`),
			want: []wantCol{{"TimeToDoneElapsedSeconds", "Edm.Int64", `null`, ``}, {"TimeToDoneRemainingSeconds", "Edm.Int64", `null`, ``}, {"TimeToDoneBreached", "Edm.Boolean", `null`, ``}}},
		{field: custom(10010, "Request Type", "sd-customerrequesttype", "", "com.atlassian.servicedesk:vp-origin"),
			value: `{"_links":{"jiraRest":"https://your-domain.atlassian.net/rest/api/2/issue/10010","web":"https://your-domain.atlassian.net/servicedesk/customer/portal/1/SD-1","self":"https://your-domain.atlassian.net/rest/servicedeskapi/request/10010"},"requestType":{"id":"11","name":"Get IT help","description":"","helpText":"","serviceDeskId":"1","groupIds":["12"]},"currentStatus":{"status":"Waiting for support","statusCategory":"NEW","statusDate":{"iso8601":"2024-06-24T10:00:00+1000"}}}`,
			want:  []wantCol{{"RequestType", "Edm.String", `"Get IT help"`, `Get IT help`}}},
		{field: custom(10011, "Approvals", "sd-approvals", "", "com.atlassian.servicedesk.approvals-plugin:sd-approvals"),
			value:  `[{"id":"1","name":"Manager approval","finalDecision":"approved","canAnswerApproval":false,"approvers":[{"approver":{"accountId":"5b10a2844c20165700ede21g","displayName":"Mia Krystof"},"approverDecision":"approved"}]}]`,
			reason: "per approver"},
		{field: custom(10012, "Satisfaction", "sd-feedback", "", "com.atlassian.servicedesk:sd-request-feedback"), value: `{"self":"https://your-domain.atlassian.net/rest/servicedeskapi/request/10010/feedback","rating":4}`,
			want: []wantCol{{"SatisfactionRating", "Edm.Int64", `4`, `4`}}},
		{field: custom(10002, "Organizations", "array", "sd-customerorganization", "com.atlassian.servicedesk:sd-customer-organizations"), value: `[{"id":"1","name":"Charlie Cakes Franchises","_links":{"self":"https://your-domain.atlassian.net/rest/servicedeskapi/organization/1"}}]`,
			want: []wantCol{{"Organizations", "Collection(Edm.String)", `["Charlie Cakes Franchises"]`, `Charlie Cakes Franchises`}}},
		{field: custom(10003, "Request participants", "array", "user", "com.atlassian.servicedesk:sd-request-participants"), value: "[" + user + "]",
			want: []wantCol{{"RequestParticipants", "Collection(Edm.String)", `["Mia Krystof"]`, `Mia Krystof`}}},
		{field: custom(10004, "Affected services", "array", "sd-asset", "com.atlassian.jira.plugins.cmdb:cmdb-object-cftype"), value: `[{"workspaceId":"f1668d0f","id":"f1668d0f:88","objectId":"88"}]`,
			reason: "Assets API"},
		{field: custom(10005, "Forge data", "object", "", "ari:cloud:ecosystem::extension/abc/def/static/object-field"), value: `{"anything":[1,2]}`,
			reason: "no fixed shape"},
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// The field types that Jira's documentation lists for schema.type and
// schema.items, beyond the spec's custom types: each needs a case.
var documentedTypes = []string{
	"string", "number", "date", "datetime", "array", "user", "group", "option", "option-with-child", "project", "version",
	"priority", "status", "statusCategory", "resolution", "issuetype", "securitylevel", "timetracking", "progress",
	"votes", "watches", "comments-page", "issuerestriction", "any", "team", "object",
	"sd-servicelevelagreement", "sd-customerrequesttype", "sd-approvals", "sd-feedback",
}
var documentedItems = []string{"string", "option", "user", "group", "version", "component", "attachment", "issuelinks", "worklog", "json", "sd-customerorganization", "sd-asset"}

func TestFieldShapesCoverEveryFieldType(t *testing.T) {
	cases := shapeCases(t)
	var known []jira.Field
	types, items, customs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, c := range cases {
		var f jira.Field
		if err := json.Unmarshal([]byte(c.field), &f); err != nil {
			t.Fatalf("case %d: field: %v", i, err)
		}
		if f.Schema != nil {
			types[f.Schema.Type], items[f.Schema.Items], customs[f.Schema.Custom] = true, true, true
		}
		known = append(known, f)
	}
	for _, ct := range specCustomTypes(t) {
		if !customs[cft+ct] {
			t.Errorf("the spec's custom field type %q has no case", ct)
		}
	}
	for _, typ := range documentedTypes {
		if !types[typ] {
			t.Errorf("schema type %q has no case", typ)
		}
	}
	for _, it := range documentedItems {
		if !items[it] {
			t.Errorf("array items %q have no case", it)
		}
	}

	for i, c := range cases {
		f := known[i]
		name := f.ID + " (" + f.Name + ")"
		m := MapField(f)
		if c.reason != "" {
			if m.Exportable() || !strings.Contains(m.Reason, c.reason) {
				t.Errorf("%s: exportable %v, reason %q; want not exportable because of %q", name, m.Exportable(), m.Reason, c.reason)
			}
			if cols := IssueColumns([]jira.Field{f}, []string{f.ID}); len(cols) != 2 {
				t.Errorf("%s: not exportable but makes columns %v", name, colNames(cols))
			}
			continue
		}
		if !m.Exportable() {
			t.Errorf("%s: not exportable (%s)", name, m.Reason)
			continue
		}
		checkShape(t, name, f, c)
	}
}

func colNames(cols []Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return out
}

// checkShape writes one issue holding the case's value through $metadata,
// the OData row writer and the CSV writer, and compares each column.
func checkShape(t *testing.T, name string, f jira.Field, c shapeCase) {
	t.Helper()
	src := DataSource{Fields: []string{f.ID}}
	svc, cols := service(src, []jira.Field{f})
	cols = cols[2:] // after Key and Id
	if got := colNames(cols); len(got) != len(c.want) {
		t.Errorf("%s: columns %v, want %d", name, got, len(c.want))
		return
	}
	// $metadata: each column's name and type.
	var md bytes.Buffer
	if err := svc.WriteMetadata(&md); err != nil {
		t.Fatalf("%s: $metadata: %v", name, err)
	}
	var doc struct {
		Props []struct {
			Name string `xml:"Name,attr"`
			Type string `xml:"Type,attr"`
		} `xml:"DataServices>Schema>EntityType>Property"`
	}
	if err := xml.Unmarshal(md.Bytes(), &doc); err != nil {
		t.Fatalf("%s: $metadata: %v", name, err)
	}
	mdType := map[string]string{}
	for _, p := range doc.Props {
		mdType[p.Name] = p.Type
	}
	is := &jira.Issue{ID: "10002", Key: "ED-1", Fields: map[string]json.RawMessage{}}
	if c.value != "" {
		is.Fields[f.ID] = json.RawMessage(c.value)
	}
	// The OData row, minimal metadata, as a feed writes it.
	set := svc.Sets[0]
	props := set.Properties
	row := odata.Row{"Key": is.Key, "Id": int64(10002)}
	vals := []any{is.Key, int64(10002)}
	for _, col := range cols {
		row[col.Name] = col.Value(is)
		vals = append(vals, col.Value(is))
	}
	var body bytes.Buffer
	rw := odata.NewRowWriter(&body, "$metadata#Issues", props)
	if err := rw.WriteRow(row); err != nil {
		t.Fatalf("%s: OData row: %v", name, err)
	}
	if err := rw.Close(""); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Value []map[string]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body.Bytes(), &page); err != nil || len(page.Value) != 1 {
		t.Fatalf("%s: OData body %s: %v", name, body.String(), err)
	}
	// The CSV row, header and all.
	var csvOut bytes.Buffer
	cw, err := newCSVWriter(&csvOut, append([]Column{{Name: "Key"}, {Name: "Id"}}, cols...), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cw.writeValues(vals); err != nil {
		t.Fatal(err)
	}
	var header, line []string
	for _, w := range c.want {
		header = append(header, w.name)
		line = append(line, w.csv)
	}
	wantCSV := "Key,Id," + strings.Join(header, ",") + "\r\nED-1,10002," + strings.Join(line, ",") + "\r\n"
	if csvOut.String() != wantCSV {
		t.Errorf("%s: CSV\n got %q\nwant %q", name, csvOut.String(), wantCSV)
	}
	for i, w := range c.want {
		col := cols[i]
		if col.Name != w.name {
			t.Errorf("%s: column %d is %s, want %s", name, i, col.Name, w.name)
			continue
		}
		if got := mdType[w.name]; got != w.typ {
			t.Errorf("%s: $metadata types %s as %s, want %s", name, w.name, got, w.typ)
		}
		if got := page.Value[0][w.name]; !sameJSON(got, w.odata) {
			t.Errorf("%s: OData %s = %s, want %s", name, w.name, got, w.odata)
		}
		// A column made of part of a value cannot be searched with the
		// field's JQL clause (Is Subtask has none of its own either).
		if len(c.want) > 1 && f.ID != "issuetype" && col.JQL != "" {
			t.Errorf("%s: derived column %s folds into JQL %q", name, w.name, col.JQL)
		}
	}
	if c.fold != nil && *c.fold == odata.FoldNone {
		if cols[0].JQL != "" {
			t.Errorf("%s: folds into JQL %q, want filtered by Ferry", name, cols[0].JQL)
		}
	} else if c.fold != nil {
		if cols[0].Fold != *c.fold || cols[0].JQL != f.ClauseNames[0] {
			t.Errorf("%s: folds as %v on %q, want %v on %q", name, cols[0].Fold, cols[0].JQL, *c.fold, f.ClauseNames[0])
		}
	}
	for _, s := range []string{body.String(), csvOut.String()} {
		if strings.Contains(s, "@example.com") {
			t.Errorf("%s: an email address was exported: %s", name, s)
		}
	}
}

func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// fuzzFields are fields of every kind MapField tells apart.
var fuzzFields = []string{
	system("summary", "Summary", "string", "", "summary"), system("description", "Description", "string", "", "description"),
	system("status", "Status", "status", "", "status"), system("project", "Project", "project", "", "project"),
	system("assignee", "Assignee", "user", "", "assignee"), system("created", "Created", "datetime", "", "created"),
	system("duedate", "Due", "date", "", "due"), system("labels", "Labels", "array", "string", "labels"),
	system("attachment", "Attachment", "array", "attachment"), system("comment", "Comment", "comments-page", ""),
	system("timetracking", "Time tracking", "timetracking", ""), system("progress", "Progress", "progress", ""),
	system("votes", "Votes", "votes", ""), system("watches", "Watchers", "watches", ""),
	system("issuetype", "Issue Type", "issuetype", "", "issuetype"),
	custom(1, "Story Points", "number", "", cft+"float"), custom(2, "Category", "option-with-child", "", cft+"cascadingselect"),
	custom(3, "People", "array", "user", cft+"multiuserpicker"), custom(4, "SLA", "sd-servicelevelagreement", "", "com.atlassian.servicedesk:sd-sla-field"),
	custom(5, "Rating", "sd-feedback", "", "com.atlassian.servicedesk:sd-request-feedback"),
	custom(6, "Request Type", "sd-customerrequesttype", "", "com.atlassian.servicedesk:vp-origin"),
}

// FuzzFieldValues: whatever JSON Jira sends as a field's value, every column
// of every kind of field makes a value the OData and CSV writers accept,
// of the column's type, and nothing panics.
func FuzzFieldValues(f *testing.F) {
	for _, seed := range []string{`null`, `"x"`, `12`, `-1.5e3`, `true`, `[]`, `{}`, `[{"filename":"a;b","size":3},{"size":"x"}]`,
		`{"originalEstimateSeconds":60,"timeSpentSeconds":1e2}`, `{"progress":1,"total":2,"percent":50}`, `{"votes":"3"}`,
		`{"ongoingCycle":{"elapsedTime":{"millis":-1500},"breached":"no"}}`, `{"completedCycles":[1,{"breached":true}]}`,
		`{"value":"p","child":{"value":7}}`, `{"displayName":"=x","emailAddress":"a@example.com"}`, `{"type":"doc","content":[{"type":"date","attrs":{"timestamp":"x"}},{"type":"mention"}]}`,
		`{"requestType":{"name":null}}`, `{"total":9223372036854775808}`, `[null,"a",{"name":"b"},[1]]`, `"2024-06-24T19:24:50.000+0000"`} {
		f.Add([]byte(seed))
	}
	var known []jira.Field
	for _, s := range fuzzFields {
		var fd jira.Field
		if err := json.Unmarshal([]byte(s), &fd); err != nil {
			f.Fatal(err)
		}
		known = append(known, fd)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		if !json.Valid(value) {
			return // Jira's answer is JSON: the decoder refuses anything else before a column sees it
		}
		for _, fd := range known {
			svc, cols := service(DataSource{Fields: []string{fd.ID}}, []jira.Field{fd})
			is := &jira.Issue{ID: "1", Key: "A-1", Fields: map[string]json.RawMessage{fd.ID: value}}
			row := odata.Row{}
			for _, c := range cols {
				v := c.Value(is)
				row[c.Name] = v
				switch v.(type) {
				case nil, string, int64, json.Number, bool, []string, []int64:
				default:
					if _, ok := v.(interface{ IsZero() bool }); !ok {
						t.Fatalf("%s: %s: value of type %T", fd.ID, c.Name, v)
					}
				}
				csvCell(c, v)
			}
			var out bytes.Buffer
			rw := odata.NewRowWriter(&out, "x", svc.Sets[0].Properties)
			if err := rw.WriteRow(row); err != nil {
				// Only a field Jira never leaves empty may refuse a value
				// it cannot read, and only as that: the feed then stops
				// with an error rather than write a wrong row.
				if !strings.Contains(err.Error(), "null in a non-nullable property") {
					t.Fatalf("%s with %s: %v", fd.ID, value, err)
				}
				continue
			}
			if err := rw.Close(""); err != nil || !json.Valid(out.Bytes()) {
				t.Fatalf("%s with %s: OData answer %s: %v", fd.ID, value, out.Bytes(), err)
			}
		}
	})
}

// TestFieldListSaysWhatEachFieldBecomes: the app API's field list (what the
// picker shows) agrees with the columns a feed makes, and every field that
// makes none says why.
func TestFieldListSaysWhatEachFieldBecomes(t *testing.T) {
	for _, c := range shapeCases(t) {
		var f jira.Field
		if err := json.Unmarshal([]byte(c.field), &f); err != nil {
			t.Fatal(err)
		}
		info := fieldInfo(f)
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(info); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Exportable bool   `json:"exportable"`
			Reason     string `json:"reason"`
			Columns    []struct {
				Name, Type string
				Collection bool
			} `json:"columns"`
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		cols := IssueColumns([]jira.Field{f}, []string{f.ID})[2:]
		if f.ID == "issuetype" {
			cols = cols[:1] // IsSubtask comes with it in the feed, not in the picker
		}
		if got.Exportable != (c.reason == "") || (got.Reason == "") != got.Exportable || len(got.Columns) != len(cols) {
			t.Errorf("%s: listed as %s; the feed makes %v", f.ID, b.String(), colNames(cols))
			continue
		}
		for i, col := range cols {
			g := got.Columns[i]
			if g.Name != col.Name || "Edm."+g.Type != col.Edm || g.Collection != col.Collection {
				t.Errorf("%s: listed column %+v, the feed's is %s %s collection=%v", f.ID, g, col.Name, col.Edm, col.Collection)
			}
		}
	}
}
