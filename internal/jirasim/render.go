package jirasim

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
)

// fieldDef describes one issue field as GET /rest/api/3/field lists it.
type fieldDef struct {
	ID, Name    string
	Custom      bool
	Type, Items string // schema type and item type
	System      string
	CustomType  string
	CustomID    int
	Clauses     []string
	Orderable   bool
}

var fieldDefs = []fieldDef{
	{ID: "summary", Name: "Summary", Type: "string", System: "summary", Clauses: []string{"summary"}, Orderable: true},
	{ID: "status", Name: "Status", Type: "status", System: "status", Clauses: []string{"status"}},
	{ID: "priority", Name: "Priority", Type: "priority", System: "priority", Clauses: []string{"priority"}, Orderable: true},
	{ID: "issuetype", Name: "Issue Type", Type: "issuetype", System: "issuetype", Clauses: []string{"issuetype", "type"}, Orderable: true},
	{ID: "project", Name: "Project", Type: "project", System: "project", Clauses: []string{"project"}, Orderable: true},
	{ID: "assignee", Name: "Assignee", Type: "user", System: "assignee", Clauses: []string{"assignee"}, Orderable: true},
	{ID: "reporter", Name: "Reporter", Type: "user", System: "reporter", Clauses: []string{"reporter"}, Orderable: true},
	{ID: "created", Name: "Created", Type: "datetime", System: "created", Clauses: []string{"created", "createdDate"}},
	{ID: "updated", Name: "Updated", Type: "datetime", System: "updated", Clauses: []string{"updated", "updatedDate"}},
	{ID: "labels", Name: "Labels", Type: "array", Items: "string", System: "labels", Clauses: []string{"labels"}, Orderable: true},
	{ID: "description", Name: "Description", Type: "string", System: "description", Clauses: []string{"description"}, Orderable: true},
	{ID: "fixVersions", Name: "Fix versions", Type: "array", Items: "version", System: "fixVersions", Clauses: []string{"fixVersion"}, Orderable: true},
	{ID: "resolution", Name: "Resolution", Type: "resolution", System: "resolution", Clauses: []string{"resolution"}, Orderable: true},
	{ID: "resolutiondate", Name: "Resolved", Type: "datetime", System: "resolutiondate", Clauses: []string{"resolutiondate", "resolved"}},
	{ID: "customfield_10010", Name: "Story Points", Custom: true, Type: "number", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:float", CustomID: 10010, Clauses: []string{"cf[10010]", "Story Points"}, Orderable: true},
	{ID: "customfield_10011", Name: "Team", Custom: true, Type: "option", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:select", CustomID: 10011, Clauses: []string{"cf[10011]", "Team"}, Orderable: true},
	{ID: "customfield_10012", Name: "Review Date", Custom: true, Type: "date", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:datepicker", CustomID: 10012, Clauses: []string{"cf[10012]", "Review Date"}, Orderable: true},
	{ID: "customfield_10013", Name: "Go-Live", Custom: true, Type: "datetime", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:datetime", CustomID: 10013, Clauses: []string{"cf[10013]", "Go-Live"}, Orderable: true},
	{ID: "customfield_10014", Name: "Reviewers", Custom: true, Type: "array", Items: "user", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:multiuserpicker", CustomID: 10014, Clauses: []string{"cf[10014]", "Reviewers"}, Orderable: true},
	{ID: "customfield_10015", Name: "Notes", Custom: true, Type: "string", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:textarea", CustomID: 10015, Clauses: []string{"cf[10015]", "Notes"}, Orderable: true},
	{ID: "customfield_10016", Name: "Tags", Custom: true, Type: "array", Items: "option", CustomType: "com.atlassian.jira.plugin.system.customfieldtypes:multiselect", CustomID: 10016, Clauses: []string{"cf[10016]", "Tags"}, Orderable: true},
}

// fieldSel is a parsed "fields" parameter.
type fieldSel struct {
	all     bool
	include map[string]bool
	exclude map[string]bool
}

// parseFields reads Jira's fields syntax: names, *all, *navigable, -name;
// list entries may themselves be comma-separated.
func parseFields(list []string, def string) fieldSel {
	sel := fieldSel{include: map[string]bool{}, exclude: map[string]bool{}}
	var names []string
	for _, l := range list {
		for _, f := range strings.Split(l, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, f)
			}
		}
	}
	if len(names) == 0 {
		names = []string{def}
	}
	for _, f := range names {
		switch {
		case f == "*all" || f == "*navigable":
			sel.all = true
		case strings.HasPrefix(f, "-"):
			sel.exclude[f[1:]] = true
		default:
			sel.include[f] = true
		}
	}
	return sel
}

func (f fieldSel) has(id string) bool {
	return !f.exclude[id] && (f.all || f.include[id])
}

// idOnly reports a selection of nothing but id and/or key: those pages may
// hold up to 5000 issues.
func (f fieldSel) idOnly() bool {
	if f.all {
		return false
	}
	for k := range f.include {
		if k != "id" && k != "key" {
			return false
		}
	}
	return true
}

func (f fieldSel) anyField() bool {
	if f.all {
		return true
	}
	for _, d := range fieldDefs {
		if f.include[d.ID] {
			return true
		}
	}
	return false
}

type issueJSON struct {
	Expand    string          `json:"expand,omitempty"`
	ID        string          `json:"id"`
	Self      string          `json:"self,omitempty"`
	Key       string          `json:"key,omitempty"`
	Fields    json.RawMessage `json:"fields,omitempty"`
	Changelog *changelogsPage `json:"changelog,omitempty"`
}

type userJSON struct {
	Self         string            `json:"self"`
	AccountID    string            `json:"accountId"`
	AccountType  string            `json:"accountType"`
	EmailAddress string            `json:"emailAddress,omitempty"`
	AvatarURLs   map[string]string `json:"avatarUrls"`
	DisplayName  string            `json:"displayName"`
	Active       bool              `json:"active"`
	TimeZone     string            `json:"timeZone,omitempty"`
	Locale       string            `json:"locale,omitempty"`
	Groups       *groupList        `json:"groups,omitempty"`
}

type groupList struct {
	Size  int         `json:"size"`
	Items []groupName `json:"items"`
}

type groupName struct {
	Name    string `json:"name"`
	GroupID string `json:"groupId"`
	Self    string `json:"self"`
}

func avatarURLs(seed string) map[string]string {
	out := map[string]string{}
	for _, sz := range []string{"16", "24", "32", "48"} {
		out[sz+"x"+sz] = "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/initials/" + seed + ".png?size=" + sz
	}
	return out
}

// user renders an account the way Jira shows it to others: closed accounts
// become "Former user", and the email only when the profile allows it.
func (s *Sim) user(base string, i int) *userJSON {
	if i < 0 {
		return nil
	}
	u := s.data.users[i]
	j := &userJSON{
		Self:        base + "/rest/api/3/user?accountId=" + url.QueryEscape(u.AccountID),
		AccountID:   u.AccountID,
		AccountType: "atlassian",
		AvatarURLs:  avatarURLs(initials(u.DisplayName)),
		DisplayName: u.DisplayName,
		Active:      !u.Closed,
		TimeZone:    u.TimeZone,
	}
	if u.Closed {
		j.DisplayName, j.TimeZone = "Former user", ""
	} else if u.EmailVisible {
		j.EmailAddress = u.Email
	}
	return j
}

func initials(name string) string {
	var b strings.Builder
	for _, w := range strings.Fields(name) {
		b.WriteByte(w[0])
	}
	return b.String() + "-" + strconv.Itoa(len(name)%6)
}

func (s *Sim) projectRef(base string, p int) map[string]any {
	pr := s.data.projects[p]
	return map[string]any{
		"self": base + "/rest/api/3/project/" + strconv.Itoa(pr.ID), "id": strconv.Itoa(pr.ID), "key": pr.Key, "name": pr.Name,
		"projectTypeKey": "software", "simplified": false,
		"avatarUrls": map[string]string{
			"16x16": base + "/rest/api/3/universal_avatar/view/type/project/avatar/10400?size=xsmall",
			"24x24": base + "/rest/api/3/universal_avatar/view/type/project/avatar/10400?size=small",
			"32x32": base + "/rest/api/3/universal_avatar/view/type/project/avatar/10400?size=medium",
			"48x48": base + "/rest/api/3/universal_avatar/view/type/project/avatar/10400",
		},
	}
}

func statusJSON(base string, st int) map[string]any {
	d := statuses[st]
	return map[string]any{
		"self": base + "/rest/api/3/status/" + d.ID, "description": d.Desc, "iconUrl": base + "/images/icons/statuses/generic.png",
		"name": d.Name, "id": d.ID,
		"statusCategory": map[string]any{
			"self": base + "/rest/api/3/statuscategory/" + strconv.Itoa(d.CatID), "id": d.CatID, "key": d.CatKey,
			"colorName": d.Color, "name": d.CatName,
		},
	}
}

// fragments are the pre-encoded JSON of everything issues share (statuses,
// users, projects, …) for one base URL, so rendering an issue is mostly
// copying bytes: bulkfetch of 100k issues must not be the bottleneck.
type fragments struct {
	base                                     string
	statuses, priorities, types, teams, tags [][]byte
	projects, users                          [][]byte
	versions                                 [][][]byte
	resolution                               []byte
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (s *Sim) fragments(base string) *fragments {
	if f := s.frags.Load(); f != nil && f.base == base {
		return f
	}
	f := &fragments{base: base}
	for k := range statuses {
		f.statuses = append(f.statuses, mustJSON(statusJSON(base, k)))
	}
	for _, p := range priorities {
		f.priorities = append(f.priorities, mustJSON(map[string]any{"self": base + "/rest/api/3/priority/" + p.ID, "iconUrl": base + "/images/icons/priorities/" + strings.ToLower(p.Name) + ".svg", "name": p.Name, "id": p.ID}))
	}
	for _, t := range issueTypes {
		f.types = append(f.types, mustJSON(map[string]any{"self": base + "/rest/api/3/issuetype/" + t.ID, "id": t.ID, "description": t.Desc,
			"iconUrl": base + "/rest/api/2/universal_avatar/view/type/issuetype/avatar/" + strconv.Itoa(t.Avatar) + "?size=medium",
			"name":    t.Name, "subtask": false, "avatarId": t.Avatar, "hierarchyLevel": map[bool]int{true: 1}[t.Name == "Epic"]}))
	}
	for _, t := range teams {
		f.teams = append(f.teams, mustJSON(map[string]any{"self": base + "/rest/api/3/customFieldOption/" + t.ID, "value": t.Value, "id": t.ID}))
	}
	for _, t := range tagPool {
		f.tags = append(f.tags, mustJSON(map[string]any{"self": base + "/rest/api/3/customFieldOption/" + t.ID, "value": t.Value, "id": t.ID}))
	}
	for p, pr := range s.data.projects {
		f.projects = append(f.projects, mustJSON(s.projectRef(base, p)))
		var vs [][]byte
		for _, ver := range pr.Versions {
			vs = append(vs, mustJSON(map[string]any{"self": base + "/rest/api/3/version/" + strconv.Itoa(ver.ID), "id": strconv.Itoa(ver.ID),
				"name": ver.Name, "archived": ver.Archived, "released": ver.Released, "releaseDate": ver.Date}))
		}
		f.versions = append(f.versions, vs)
	}
	for u := range s.data.users {
		f.users = append(f.users, mustJSON(s.user(base, u)))
	}
	f.resolution = mustJSON(map[string]any{"self": base + "/rest/api/3/resolution/10000", "id": "10000", "description": "Work has been completed on this issue.", "name": "Done"})
	s.frags.Store(f)
	return f
}

const issueExpand = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"

// appendIssue appends issue i as the REST API returns it. The JSON is built
// by hand: encoding/json would re-validate every pre-encoded fragment.
func (s *Sim) appendIssue(b []byte, base string, c corpus, i int, sel fieldSel) []byte {
	id := strconv.Itoa(10001 + i)
	full := sel.anyField()
	b = append(b, '{')
	if full {
		b = append(b, `"expand":"`+issueExpand+`",`...)
	}
	b = append(b, `"id":"`...)
	b = append(b, id...)
	b = append(b, '"')
	if full || sel.has("key") {
		b = append(b, `,"self":`...)
		b = append(b, mustJSON(base+"/rest/api/3/issue/"+id)...)
		b = append(b, `,"key":"`...)
		b = append(b, c.key(i)...)
		b = append(b, '"')
	}
	if full {
		b = append(b, `,"fields":`...)
		b = append(b, s.issueFields(base, c, c.issue(i), sel)...)
	}
	return append(b, '}')
}

// issueFields renders the selected fields of an issue as a JSON object.
func (s *Sim) issueFields(base string, c corpus, is *issue, sel fieldSel) []byte {
	f := s.fragments(base)
	b := make([]byte, 0, 4096)
	b = append(b, '{')
	put := func(id string, v []byte) {
		if !sel.has(id) {
			return
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, id...)
		b = append(b, '"', ':')
		b = append(b, v...)
	}
	null := []byte("null")
	user := func(u int) []byte {
		if u < 0 {
			return null
		}
		return f.users[u]
	}
	str := func(v string) []byte { return mustJSON(v) }
	put("summary", str(is.Summary))
	put("status", f.statuses[is.Status])
	put("priority", f.priorities[is.Priority])
	put("issuetype", f.types[is.Type])
	put("project", f.projects[is.Project])
	put("assignee", user(is.Assignee))
	put("reporter", user(is.Reporter))
	put("created", str(fmtJiraTime(is.Created)))
	put("updated", str(fmtJiraTime(c.updated(is.idx))))
	if sel.has("labels") {
		put("labels", mustJSON(is.Labels))
	}
	if sel.has("description") {
		put("description", s.description(is))
	}
	if sel.has("fixVersions") {
		vs := []byte{'['}
		for k, v := range is.FixVersions {
			if k > 0 {
				vs = append(vs, ',')
			}
			vs = append(vs, f.versions[is.Project][v]...)
		}
		put("fixVersions", append(vs, ']'))
	}
	done := statuses[is.Status].CatKey == "done"
	if done {
		put("resolution", f.resolution)
		put("resolutiondate", str(fmtJiraTime(is.Updated)))
	} else {
		put("resolution", null)
		put("resolutiondate", null)
	}
	if is.Points != nil {
		put("customfield_10010", strconv.AppendFloat(nil, *is.Points, 'f', -1, 64))
	} else {
		put("customfield_10010", null)
	}
	if is.Team >= 0 {
		put("customfield_10011", f.teams[is.Team])
	} else {
		put("customfield_10011", null)
	}
	if is.ReviewDate != "" {
		put("customfield_10012", str(is.ReviewDate))
	} else {
		put("customfield_10012", null)
	}
	if is.GoLive != nil {
		put("customfield_10013", str(fmtJiraTime(*is.GoLive)))
	} else {
		put("customfield_10013", null)
	}
	if len(is.Reviewers) > 0 {
		rv := []byte{'['}
		for k, u := range is.Reviewers {
			if k > 0 {
				rv = append(rv, ',')
			}
			rv = append(rv, f.users[u]...)
		}
		put("customfield_10014", append(rv, ']'))
	} else {
		put("customfield_10014", null)
	}
	if is.Notes != "" {
		put("customfield_10015", str(is.Notes))
	} else {
		put("customfield_10015", null)
	}
	if len(is.Tags) > 0 {
		tv := []byte{'['}
		for k, t := range is.Tags {
			if k > 0 {
				tv = append(tv, ',')
			}
			tv = append(tv, f.tags[t]...)
		}
		put("customfield_10016", append(tv, ']'))
	} else {
		put("customfield_10016", null)
	}
	s.modelFields(base, c, is, sel, put)
	return append(b, '}')
}

// description renders the ADF body; generated issues use a fixed document
// shape, so only their text needs encoding.
func (s *Sim) description(is *issue) []byte {
	if text, ok := is.Description.(adfText); ok {
		out := []byte(`{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":`)
		out = append(out, mustJSON(string(text))...)
		return append(out, `}]}]}`...)
	}
	return mustJSON(is.Description)
}

// adfText is a description held as plain text and rendered as a one
// paragraph ADF document.
type adfText string
