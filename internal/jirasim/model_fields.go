package jirasim

import (
	"strconv"
	"strings"
	"time"
)

// The issue fields of the data model (model.go), listed by GET
// /rest/api/3/field and rendered in issues with Jira Cloud's value shapes.
// Together with render.go's fields they cover every system field type Jira
// lists and every built-in custom field type of the create-field API
// (CustomFieldDefinitionJsonBean.type), plus Jira Software's sprint and rank
// and Jira Service Management's SLA and request participants.

func init() { fieldDefs = append(fieldDefs, modelFieldDefs...) }

const cft = "com.atlassian.jira.plugin.system.customfieldtypes:"

func customDef(id int, name, typ, items, custom string) fieldDef {
	n := strconv.Itoa(id)
	return fieldDef{ID: "customfield_" + n, Name: name, Custom: true, Type: typ, Items: items, CustomType: custom, CustomID: id,
		Clauses: []string{"cf[" + n + "]", name}, Orderable: true}
}

var modelFieldDefs = []fieldDef{
	{ID: "comment", Name: "Comment", Type: "comments-page", System: "comment", Clauses: []string{"comment"}, Orderable: true},
	{ID: "worklog", Name: "Log Work", Type: "array", Items: "worklog", System: "worklog", Clauses: []string{}, Orderable: true},
	{ID: "issuelinks", Name: "Linked Issues", Type: "array", Items: "issuelinks", System: "issuelinks", Clauses: []string{"issueLink"}, Orderable: true},
	{ID: "attachment", Name: "Attachment", Type: "array", Items: "attachment", System: "attachment", Clauses: []string{"attachments"}},
	{ID: "timetracking", Name: "Time tracking", Type: "timetracking", System: "timetracking", Clauses: []string{}, Orderable: true},
	{ID: "progress", Name: "Progress", Type: "progress", System: "progress", Clauses: []string{"progress"}},
	{ID: "aggregateprogress", Name: "Σ Progress", Type: "progress", System: "aggregateprogress", Clauses: []string{}},
	{ID: "votes", Name: "Votes", Type: "votes", System: "votes", Clauses: []string{"votes"}},
	{ID: "watches", Name: "Watchers", Type: "watches", System: "watches", Clauses: []string{"watchers"}},
	{ID: "components", Name: "Components", Type: "array", Items: "component", System: "components", Clauses: []string{"component"}, Orderable: true},
	{ID: "versions", Name: "Affects versions", Type: "array", Items: "version", System: "versions", Clauses: []string{"affectedVersion"}, Orderable: true},
	{ID: "environment", Name: "Environment", Type: "string", System: "environment", Clauses: []string{"environment"}, Orderable: true},
	{ID: "duedate", Name: "Due date", Type: "date", System: "duedate", Clauses: []string{"due", "duedate"}, Orderable: true},
	{ID: "timeoriginalestimate", Name: "Original estimate", Type: "number", System: "timeoriginalestimate", Clauses: []string{"originalEstimate", "timeoriginalestimate"}},
	{ID: "timeestimate", Name: "Remaining Estimate", Type: "number", System: "timeestimate", Clauses: []string{"remainingEstimate", "timeestimate"}},
	{ID: "timespent", Name: "Time Spent", Type: "number", System: "timespent", Clauses: []string{"timespent"}},
	{ID: "aggregatetimeoriginalestimate", Name: "Σ Original Estimate", Type: "number", System: "aggregatetimeoriginalestimate", Clauses: []string{}},
	{ID: "aggregatetimeestimate", Name: "Σ Remaining Estimate", Type: "number", System: "aggregatetimeestimate", Clauses: []string{}},
	{ID: "aggregatetimespent", Name: "Σ Time Spent", Type: "number", System: "aggregatetimespent", Clauses: []string{}},
	{ID: "workratio", Name: "Work Ratio", Type: "number", System: "workratio", Clauses: []string{"workratio"}},
	{ID: "creator", Name: "Creator", Type: "user", System: "creator", Clauses: []string{"creator"}},
	{ID: "subtasks", Name: "Sub-tasks", Type: "array", Items: "issuelinks", System: "subtasks", Clauses: []string{"subtasks"}},
	{ID: "security", Name: "Security Level", Type: "securitylevel", System: "security", Clauses: []string{"level"}, Orderable: true},
	{ID: "statuscategorychangedate", Name: "Status Category Changed", Type: "datetime", System: "statuscategorychangedate", Clauses: []string{"statusCategoryChangedDate"}},
	{ID: "lastViewed", Name: "Last Viewed", Type: "datetime", System: "lastViewed", Clauses: []string{"lastViewed"}},
	customDef(10019, "Rank", "any", "", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
	customDef(10020, "Sprint", "array", "json", "com.pyxis.greenhopper.jira:gh-sprint"),
	customDef(10040, "Approver Group", "group", "", cft+"grouppicker"),
	customDef(10041, "Notify Groups", "array", "group", cft+"multigrouppicker"),
	customDef(10042, "Import Id", "number", "", cft+"importid"),
	customDef(10043, "Themes", "array", "string", cft+"labels"),
	customDef(10044, "Flags", "array", "option", cft+"multicheckboxes"),
	customDef(10045, "Affected Releases", "array", "version", cft+"multiversion"),
	customDef(10046, "Related Project", "project", "", cft+"project"),
	customDef(10047, "Severity", "option", "", cft+"radiobuttons"),
	customDef(10048, "Legacy Ref", "string", "", cft+"readonlyfield"),
	customDef(10049, "Customer", "string", "", cft+"textfield"),
	customDef(10050, "Runbook URL", "string", "", cft+"url"),
	customDef(10051, "QA Owner", "user", "", cft+"userpicker"),
	customDef(10052, "Target Release", "version", "", cft+"version"),
	customDef(10053, "Region", "option-with-child", "", cft+"cascadingselect"),
	customDef(10054, "Time to resolution", "sd-servicelevelagreement", "", "com.atlassian.servicedesk:sd-sla-field"),
	customDef(10055, "Request participants", "array", "user", "com.atlassian.servicedesk:sd-request-participants"),
}

var severities = []struct{ ID, Value string }{{"10400", "Sev 1"}, {"10401", "Sev 2"}, {"10402", "Sev 3"}}
var flagOptions = []struct{ ID, Value string }{{"10410", "Impediment"}, {"10411", "Needs QA"}, {"10412", "Customer-facing, urgent"}}
var themePool = []string{"growth", "reliability", "cost", "q3-okr"}
var customers = []string{"ACME Corp", "Globex; EU", "Initech \"Labs\"", "Umbrella"}

// slaGoal is the "Time to resolution" goal.
const slaGoal = 8 * time.Hour

// modelFields appends the data model's fields of an issue through put.
func (s *Sim) modelFields(base string, c corpus, is *issue, sel fieldSel, put func(string, []byte)) {
	// Most reads ask for none of these: skip them without a cost.
	wanted := false
	for _, fd := range modelFieldDefs {
		if sel.has(fd.ID) {
			wanted = true
			break
		}
	}
	if !wanted {
		return
	}
	d := s.data
	f := s.fragments(base)
	i := is.idx
	null := []byte("null")
	id := strconv.Itoa(is.ID)
	key := d.projects[is.Project].Key + "-" + strconv.Itoa(is.KeyNum)
	opt := func(value, oid string) map[string]any {
		return map[string]any{"self": base + "/rest/api/3/customFieldOption/" + oid, "value": value, "id": oid}
	}
	raw := func(v []byte) rawJSON { return rawJSON(v) }
	if sel.has("comment") {
		cs := s.comments(c, i)
		v := []byte(`{"comments":`)
		v = appendList(v, len(cs), func(b []byte, k int) []byte { return s.appendComment(b, base, cs[k]) })
		v = append(v, `,"self":`...)
		v = append(v, mustJSON(base+"/rest/api/3/issue/"+id+"/comment")...)
		v = append(v, `,"maxResults":`...)
		v = strconv.AppendInt(v, int64(len(cs)), 10)
		v = append(v, `,"total":`...)
		v = strconv.AppendInt(v, int64(len(cs)), 10)
		put("comment", append(v, `,"startAt":0}`...))
	}
	if sel.has("worklog") {
		// The issue field holds at most 20; the rest needs the worklog
		// endpoint, as in Jira.
		ws := s.worklogs(c, i)
		v := []byte(`{"startAt":0,"maxResults":20,"total":`)
		v = strconv.AppendInt(v, int64(len(ws)), 10)
		v = append(v, `,"worklogs":`...)
		v = appendList(v, min(len(ws), 20), func(b []byte, k int) []byte { return s.appendWorklog(b, base, ws[k]) })
		put("worklog", append(v, '}'))
	}
	if sel.has("issuelinks") {
		items := []any{}
		for _, l := range d.links(i) {
			items = append(items, s.issueLinkJSON(base, c, l))
		}
		put("issuelinks", mustJSON(items))
	}
	if sel.has("attachment") {
		items := []any{}
		for _, a := range d.attachments(is) {
			items = append(items, s.attachmentJSON(base, a))
		}
		put("attachment", mustJSON(items))
	}
	timeFields := []string{"timetracking", "progress", "aggregateprogress", "timeoriginalestimate", "aggregatetimeoriginalestimate",
		"timeestimate", "aggregatetimeestimate", "timespent", "aggregatetimespent", "workratio"}
	anyTime := false
	for _, t := range timeFields {
		anyTime = anyTime || sel.has(t)
	}
	if anyTime {
		s.timeFields(c, i, put)
	}
	if sel.has("votes") {
		put("votes", mustJSON(map[string]any{"self": base + "/rest/api/3/issue/" + key + "/votes", "votes": d.votes(i), "hasVoted": false}))
	}
	if sel.has("watches") {
		put("watches", mustJSON(map[string]any{"self": base + "/rest/api/3/issue/" + key + "/watchers", "watchCount": d.watchers(i), "isWatching": false}))
	}
	if sel.has("components") {
		comps := d.components(is.Project)
		items := []any{}
		for _, k := range d.issueComponents(i) {
			items = append(items, componentRef(base, comps[k]))
		}
		put("components", mustJSON(items))
	}
	h := d.h(i, saltExtra)
	h2 := d.h(i, saltExtra2)
	generated := i < d.n
	if sel.has("versions") {
		vs := []byte{'['}
		if generated && h%5 == 0 {
			vs = append(vs, f.versions[is.Project][int(h>>4%2)]...)
		}
		put("versions", append(vs, ']'))
	}
	if generated && h>>8%4 == 0 {
		put("environment", mustJSON(adf("Production, EU region; browser: Safari 17")))
	} else {
		put("environment", null)
	}
	if generated && h>>10%3 == 0 {
		put("duedate", mustJSON(is.Created.AddDate(0, 0, 14+int(h>>12%30)).Format("2006-01-02")))
	} else {
		put("duedate", null)
	}
	if is.Reporter >= 0 {
		put("creator", f.users[is.Reporter])
	} else {
		put("creator", null)
	}
	put("subtasks", []byte("[]"))
	put("security", null)
	if sel.has("statuscategorychangedate") {
		put("statuscategorychangedate", mustJSON(fmtJiraTime(s.statusCategoryChanged(is))))
	}
	put("lastViewed", null)
	put("customfield_10019", mustJSON("0|i"+zeroPad(strconv.FormatInt(int64(is.ID), 36), 6)+":"))
	if sel.has("customfield_10020") {
		ks := d.sprintsOf(i)
		if len(ks) == 0 {
			put("customfield_10020", null)
		} else {
			items := make([]any, len(ks))
			for n, k := range ks {
				items[n] = sprintFieldJSON(d.sprint(is.Project, k))
			}
			put("customfield_10020", mustJSON(items))
		}
	}
	groups := []string{"jira-users", "jira-software-users", "jira-administrators"}
	group := func(name string) map[string]any {
		return map[string]any{"name": name, "groupId": groupID(name), "self": base + "/rest/api/3/group?groupId=" + groupID(name)}
	}
	if generated && h>>14%3 == 0 {
		put("customfield_10040", mustJSON(group(groups[h>>16%3])))
	} else {
		put("customfield_10040", null)
	}
	if generated && h>>18%2 == 0 {
		put("customfield_10041", mustJSON([]any{group(groups[h>>20%3]), group(groups[(h>>20+1)%3])}))
	} else {
		put("customfield_10041", null)
	}
	if generated && h>>22%4 == 0 {
		put("customfield_10042", []byte(strconv.Itoa(500000+i)))
	} else {
		put("customfield_10042", null)
	}
	if generated && h>>24%3 != 0 {
		put("customfield_10043", mustJSON([]string{themePool[h>>26%4]}))
	} else {
		put("customfield_10043", null)
	}
	if generated && h>>28%3 == 0 {
		items := []any{opt(flagOptions[h>>30%3].Value, flagOptions[h>>30%3].ID)}
		if h>>32%2 == 0 {
			o := flagOptions[(h>>30+1)%3]
			items = append(items, opt(o.Value, o.ID))
		}
		put("customfield_10044", mustJSON(items))
	} else {
		put("customfield_10044", null)
	}
	if generated && h>>34%3 == 0 {
		put("customfield_10045", mustJSON([]any{raw(f.versions[is.Project][0]), raw(f.versions[is.Project][2])}))
	} else {
		put("customfield_10045", null)
	}
	if generated && h>>36%4 == 0 {
		put("customfield_10046", f.projects[int(h>>38%uint64(len(d.projects)))])
	} else {
		put("customfield_10046", null)
	}
	if generated && h>>40%4 != 0 {
		sv := severities[h>>42%3]
		put("customfield_10047", mustJSON(opt(sv.Value, sv.ID)))
	} else {
		put("customfield_10047", null)
	}
	if generated && h>>44%5 == 0 {
		put("customfield_10048", mustJSON("LEG-"+strconv.Itoa(1000+i)))
	} else {
		put("customfield_10048", null)
	}
	if generated && h>>46%2 == 0 {
		put("customfield_10049", mustJSON(customers[h>>48%4]))
	} else {
		put("customfield_10049", null)
	}
	if generated && h>>50%3 == 0 {
		put("customfield_10050", mustJSON("https://runbooks.example.invalid/"+strings.ToLower(key)+"?step=1&lang=en"))
	} else {
		put("customfield_10050", null)
	}
	if generated && h2%3 != 0 {
		put("customfield_10051", f.users[d.pick(is.Project, h2>>4)])
	} else {
		put("customfield_10051", null)
	}
	if generated && h2>>8%3 == 0 {
		put("customfield_10052", f.versions[is.Project][int(h2>>10%3)])
	} else {
		put("customfield_10052", null)
	}
	if p, ch := d.region(i); p >= 0 {
		r := regions[p]
		v := opt(r.Value, r.ID)
		if ch >= 0 {
			v["child"] = opt(r.Children[ch].Value, r.Children[ch].ID)
		}
		put("customfield_10053", mustJSON(v))
	} else {
		put("customfield_10053", null)
	}
	if sel.has("customfield_10054") {
		put("customfield_10054", s.slaJSON(base, is))
	}
	if generated && h2>>12%3 == 0 {
		rp := []byte{'['}
		rp = append(rp, f.users[d.pick(is.Project, h2>>14)]...)
		put("customfield_10055", append(rp, ']'))
	} else {
		put("customfield_10055", []byte("[]"))
	}
}

// rawJSON is pre-encoded JSON inside a value given to mustJSON.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

func zeroPad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// statusCategoryChanged is when the issue last changed status category:
// its last status change, or its creation.
func (s *Sim) statusCategoryChanged(is *issue) time.Time {
	t := is.Created
	for _, e := range s.data.changelog(is) {
		if e.Field == "status" {
			t = e.Created
		}
	}
	return t
}

// sprintFieldJSON is a sprint as the Sprint custom field shows it.
func sprintFieldJSON(sp sprintRec) map[string]any {
	v := map[string]any{"id": sp.ID, "name": sp.Name, "state": sp.State, "boardId": sp.Board, "goal": sp.Goal}
	z := "2006-01-02T15:04:05.000Z"
	if !sp.Start.IsZero() {
		v["startDate"], v["endDate"] = sp.Start.UTC().Format(z), sp.End.UTC().Format(z)
	}
	if !sp.Complete.IsZero() {
		v["completeDate"] = sp.Complete.UTC().Format(z)
	}
	return v
}

func componentRef(base string, c componentRec) map[string]any {
	v := map[string]any{"self": base + "/rest/api/3/component/" + strconv.Itoa(c.ID), "id": strconv.Itoa(c.ID), "name": c.Name}
	if c.Description != "" {
		v["description"] = c.Description
	}
	return v
}

// appendWorklog appends a worklog as Jira renders it. Built by hand, like
// issues: encoding/json would re-validate every pre-encoded user.
func (s *Sim) appendWorklog(b []byte, base string, w worklogRec) []byte {
	f := s.fragments(base)
	issueID := strconv.Itoa(10001 + w.Issue)
	id := strconv.FormatInt(w.ID, 10)
	b = append(b, `{"self":`...)
	b = append(b, mustJSON(base+"/rest/api/3/issue/"+issueID+"/worklog/"+id)...)
	b = append(b, `,"author":`...)
	b = append(b, f.users[w.Author]...)
	b = append(b, `,"updateAuthor":`...)
	b = append(b, f.users[w.Author]...)
	if w.Comment != nil {
		b = append(b, `,"comment":`...)
		b = appendADF(b, w.Comment)
	}
	b = append(b, `,"created":"`...)
	b = append(b, fmtJiraTime(w.Created)...)
	b = append(b, `","updated":"`...)
	b = append(b, fmtJiraTime(w.Updated)...)
	b = append(b, `","started":"`...)
	b = append(b, fmtJiraTime(w.Started)...)
	b = append(b, `","timeSpent":"`...)
	b = append(b, jiraDuration(w.Seconds)...)
	b = append(b, `","timeSpentSeconds":`...)
	b = strconv.AppendInt(b, int64(w.Seconds), 10)
	b = append(b, `,"id":"`...)
	b = append(b, id...)
	b = append(b, `","issueId":"`...)
	b = append(b, issueID...)
	return append(b, `"}`...)
}

// appendComment appends a comment as Jira renders it.
func (s *Sim) appendComment(b []byte, base string, cm commentRec) []byte {
	f := s.fragments(base)
	id := strconv.FormatInt(cm.ID, 10)
	b = append(b, `{"self":`...)
	b = append(b, mustJSON(base+"/rest/api/3/issue/"+strconv.Itoa(10001+cm.Issue)+"/comment/"+id)...)
	b = append(b, `,"id":"`...)
	b = append(b, id...)
	b = append(b, `","author":`...)
	b = append(b, f.users[cm.Author]...)
	b = append(b, `,"body":`...)
	if cm.Body != nil {
		b = appendADF(b, cm.Body)
	} else {
		b = append(b, s.commentBody(cm)...)
	}
	b = append(b, `,"updateAuthor":`...)
	b = append(b, f.users[cm.Author]...)
	b = append(b, `,"created":"`...)
	b = append(b, fmtJiraTime(cm.Created)...)
	b = append(b, `","updated":"`...)
	b = append(b, fmtJiraTime(cm.Updated)...)
	return append(b, `","jsdPublic":true}`...)
}

// commentBody is a generated comment's body, encoded once per template
// and mentioned user.
func (s *Sim) commentBody(cm commentRec) []byte {
	key := cm.tmpl<<32 | cm.other
	if v, ok := s.model.bodies.Load(key); ok {
		return v.([]byte)
	}
	u := s.data.users[cm.other]
	enc := mustJSON(commentBodies[cm.tmpl](u.AccountID, u.DisplayName))
	s.model.bodies.Store(key, enc)
	return enc
}

// appendADF appends a stored body: plain text as a one-paragraph
// document, or the document itself.
func appendADF(b []byte, v any) []byte {
	if t, ok := v.(adfText); ok {
		b = append(b, `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":`...)
		b = append(b, mustJSON(string(t))...)
		return append(b, `}]}]}`...)
	}
	return append(b, mustJSON(v)...)
}

// appendList appends a JSON array of n items.
func appendList(b []byte, n int, item func(b []byte, k int) []byte) []byte {
	b = append(b, '[')
	for k := 0; k < n; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		b = item(b, k)
	}
	return append(b, ']')
}

func (s *Sim) issueLinkJSON(base string, c corpus, l issueLinkRec) map[string]any {
	t := linkTypes[l.Type]
	f := s.fragments(base)
	other := c.issue(l.Other)
	otherID := strconv.Itoa(other.ID)
	ref := map[string]any{
		"id": otherID, "key": c.key(l.Other), "self": base + "/rest/api/3/issue/" + otherID,
		"fields": map[string]any{"summary": other.Summary, "status": rawJSON(f.statuses[other.Status]),
			"priority": rawJSON(f.priorities[other.Priority]), "issuetype": rawJSON(f.types[other.Type])},
	}
	v := map[string]any{
		"id": strconv.FormatInt(l.ID, 10), "self": base + "/rest/api/3/issueLink/" + strconv.FormatInt(l.ID, 10),
		"type": map[string]any{"id": t.ID, "name": t.Name, "inward": t.Inward, "outward": t.Outward, "self": base + "/rest/api/3/issueLinkType/" + t.ID},
	}
	if l.Outward {
		v["outwardIssue"] = ref
	} else {
		v["inwardIssue"] = ref
	}
	return v
}

func (s *Sim) attachmentJSON(base string, a attachmentRec) map[string]any {
	id := strconv.Itoa(a.ID)
	v := map[string]any{
		"self": base + "/rest/api/3/attachment/" + id, "id": id, "filename": a.File,
		"author": rawJSON(s.fragments(base).users[a.Author]), "created": fmtJiraTime(a.Created), "size": a.Size,
		"mimeType": a.Mime, "content": base + "/rest/api/3/attachment/content/" + id,
	}
	if strings.HasPrefix(a.Mime, "image/") {
		v["thumbnail"] = base + "/rest/api/3/attachment/thumbnail/" + id
	}
	return v
}

// slaJSON is the "Time to resolution" SLA: a completed cycle for resolved
// issues, an ongoing one (measured at the data's last day) otherwise; the
// clock runs on calendar time.
func (s *Sim) slaJSON(base string, is *issue) []byte {
	if is.idx >= s.data.n || s.data.h(is.idx, saltSLA)%3 == 0 {
		return []byte("null")
	}
	at := func(t time.Time) map[string]any {
		return map[string]any{"iso8601": t.UTC().Format("2006-01-02T15:04:05-0700"), "jira": fmtJiraTime(t),
			"friendly": t.UTC().Format("02/Jan/06 3:04 PM"), "epochMillis": t.UnixMilli()}
	}
	dur := func(d time.Duration) map[string]any {
		return map[string]any{"millis": d.Milliseconds(), "friendly": friendlyDuration(d.Milliseconds())}
	}
	start := is.Created
	breach := start.Add(slaGoal)
	v := map[string]any{"id": "1", "name": "Time to resolution",
		"_links":           map[string]any{"self": base + "/rest/servicedeskapi/request/" + strconv.Itoa(is.ID) + "/sla/1"},
		"completedCycles":  []any{},
		"slaDisplayFormat": "NEW_SLA_FORMAT",
	}
	if statuses[is.Status].CatKey == "done" {
		stop := is.Updated
		elapsed := stop.Sub(start)
		v["completedCycles"] = []any{map[string]any{
			"startTime": at(start), "stopTime": at(stop), "breachTime": at(breach), "breached": elapsed > slaGoal,
			"goalDuration": dur(slaGoal), "elapsedTime": dur(elapsed), "remainingTime": dur(slaGoal - elapsed),
		}}
	} else {
		elapsed := dataEnd.Sub(start)
		v["ongoingCycle"] = map[string]any{
			"startTime": at(start), "breachTime": at(breach), "breached": elapsed > slaGoal, "paused": false,
			"withinCalendarHours": true, "goalDuration": dur(slaGoal), "elapsedTime": dur(elapsed), "remainingTime": dur(slaGoal - elapsed),
		}
	}
	return mustJSON(v)
}

// timeFields renders time tracking, progress, the estimate and spent
// numbers and the work ratio, all from the issue's worklogs.
func (s *Sim) timeFields(c corpus, i int, put func(string, []byte)) {
	d := s.data
	null := []byte("null")
	orig := d.originalEstimate(i)
	spent := s.timeSpent(c, i)
	remaining := max(orig-spent, 0)
	{
		tt := map[string]any{}
		if orig > 0 {
			tt["originalEstimate"], tt["originalEstimateSeconds"] = jiraDuration(orig), orig
		}
		if orig > 0 || spent > 0 {
			tt["remainingEstimate"], tt["remainingEstimateSeconds"] = jiraDuration(remaining), remaining
		}
		if spent > 0 {
			tt["timeSpent"], tt["timeSpentSeconds"] = jiraDuration(spent), spent
		}
		put("timetracking", mustJSON(tt))
	}
	progress := func() []byte {
		p := map[string]any{"progress": spent, "total": spent + remaining}
		if spent+remaining > 0 {
			p["percent"] = spent * 100 / (spent + remaining)
		}
		return mustJSON(p)
	}
	{
		put("progress", progress())
	}
	{
		put("aggregateprogress", progress())
	}
	seconds := func(n int, present bool) []byte {
		if !present {
			return null
		}
		return []byte(strconv.Itoa(n))
	}
	put("timeoriginalestimate", seconds(orig, orig > 0))
	put("aggregatetimeoriginalestimate", seconds(orig, orig > 0))
	put("timeestimate", seconds(remaining, orig > 0 || spent > 0))
	put("aggregatetimeestimate", seconds(remaining, orig > 0 || spent > 0))
	put("timespent", seconds(spent, spent > 0))
	put("aggregatetimespent", seconds(spent, spent > 0))
	if orig > 0 {
		put("workratio", []byte(strconv.Itoa(spent*100/orig)))
	} else {
		put("workratio", []byte("-1"))
	}
}
