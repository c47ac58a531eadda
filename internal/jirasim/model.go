package jirasim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The rest of Jira's data model — worklogs, comments, issue links, boards
// and sprints, components, attachments, votes, watchers, time tracking, a
// JSM SLA and the remaining custom field types — is generated per issue
// from (seed, index) like the issue itself, so it costs nothing until it is
// read and a site of a million issues stays small. Ids are derived from the
// issue id (worklog and comment k of issue 10001 are 1000100+k), so a
// worklog or comment id leads straight back to its issue. Issues created
// through REST have none of it; items planted through the control API
// (model_control.go) are kept in memory.

const (
	saltWorklog = 100 + iota
	saltWorklogText
	saltComment
	saltCommentText
	saltLink
	saltSprint
	saltComponent
	saltAttach
	saltVotes
	saltEstimate
	saltSLA
	saltRegion
	saltExtra
	saltExtra2
)

// perIssue is how many worklog or comment ids one issue may hold.
const perIssue = 100

// plantedBase starts the ids of planted worklogs and comments, far above
// any generated one.
const plantedBase = int64(9_000_000_000)

// worklogRec is one worklog.
type worklogRec struct {
	ID               int64
	Issue            int // corpus index
	Author           int
	Started          time.Time
	Created, Updated time.Time
	Seconds          int
	Comment          any // nil, adfText or an ADF document
}

// commentRec is one comment.
type commentRec struct {
	ID               int64
	Issue            int
	Author           int
	Created, Updated time.Time
	Body             any // planted: adfText or an ADF document
	tmpl, other      int // generated: body template and the user it mentions
}

// modelState holds what is not generated: planted worklogs and comments
// (copy-on-write, so readers never lock) and the lazily built index of
// generated worklogs by update time.
type modelState struct {
	planted atomic.Pointer[plantedItems]
	bodies  sync.Map   // encoded generated comment bodies, by template and mentioned user
	mu      sync.Mutex // serialises writers of planted

	byUpdatedOnce sync.Once
	byUpdated     []worklogStamp
}

type plantedItems struct {
	worklogs map[int][]worklogRec // by issue index
	comments map[int][]commentRec
	wlByID   map[int64]worklogRec
	wlOrder  []worklogStamp // by update time
	next     int64
	// touched is when a planted comment or worklog last changed an issue
	// (by issue index): as in Jira, adding one updates the issue.
	touched map[int]time.Time
}

type worklogStamp struct {
	ms int64 // updated, epoch milliseconds
	id int64
}

func (m *modelState) items() *plantedItems {
	if p := m.planted.Load(); p != nil {
		return p
	}
	return &plantedItems{}
}

// genBrowsers lists, per project, the active users who may browse it, in
// user order: the authors of its worklogs and comments.
func (d *dataset) genBrowsers() {
	d.browserLists = make([][]int, len(d.projects))
	for p := range d.projects {
		var out []int
		for u := range d.users {
			if d.users[u].browse[p] && !d.users[u].Closed {
				out = append(out, u)
			}
		}
		if len(out) == 0 {
			out = append(out, 0)
		}
		d.browserLists[p] = out
	}
}

// pick chooses one of the project's browsers for an issue attribute.
func (d *dataset) pick(p int, h uint64) int {
	bs := d.browserLists[p]
	return bs[h%uint64(len(bs))]
}

// ---- worklogs

// worklogCount: most issues have up to three; one in fifty is a long
// running one with more than a default page of the issue's worklog field.
func (d *dataset) worklogCount(i int) int {
	h := d.h(i, saltWorklog)
	if h%50 == 7 {
		return 21 + int(h>>8%15)
	}
	return int(h >> 8 % 4)
}

var worklogNotes = []string{
	"Investigated the logs",
	"Pairing session; wrote tests",
	"Code review, 2 rounds",
	"Deployed to staging =then prod",
	"Call with the customer \"ACME\", notes in the ticket",
	"",
}

// genWorklogs are generated issue i's worklogs; they need only the
// issue's id, project, created and updated, never the whole issue.
func (d *dataset) genWorklogs(i int) []worklogRec {
	if i >= d.n {
		return nil
	}
	n := d.worklogCount(i)
	out := make([]worklogRec, n)
	for k := range out {
		out[k] = d.genWorklog(i, k, n)
	}
	return out
}

// genWorklog is worklog k of the n of generated issue i.
func (d *dataset) genWorklog(i, k, n int) worklogRec {
	created, updatedIssue := d.created(i), d.updated(i)
	span := updatedIssue.Sub(created)
	h := d.h(i*perIssue+k, saltWorklogText)
	started := created.Add(span * time.Duration(k+1) / time.Duration(n+2)).Truncate(time.Second)
	logged := started.Add(time.Duration(h%3600) * time.Second)
	if logged.After(updatedIssue) {
		logged = updatedIssue
	}
	updated := logged
	if h>>12%5 == 0 {
		updated = logged.Add(updatedIssue.Sub(logged) / 2).Truncate(time.Second)
	}
	w := worklogRec{
		ID: int64(10001+i)*perIssue + int64(k), Issue: i, Author: d.pick(d.projectOf(i), h>>20),
		Started: started, Created: logged, Updated: updated,
		Seconds: int(1+h>>28%16) * 900,
	}
	if note := worklogNotes[h>>36%uint64(len(worklogNotes))]; note != "" {
		w.Comment = adfText(note)
	}
	return w
}

// worklogs are an issue's worklogs, generated then planted, by id.
func (s *Sim) worklogs(c corpus, i int) []worklogRec {
	out := s.data.genWorklogs(i)
	if pl := s.model.items().worklogs[i]; len(pl) > 0 {
		out = append(out, pl...)
	}
	return out
}

// worklogByID finds a worklog by id.
func (s *Sim) worklogByID(c corpus, id int64) (worklogRec, bool) {
	if id >= plantedBase {
		w, ok := s.model.items().wlByID[id]
		return w, ok
	}
	i, k := int(id/perIssue)-10001, int(id%perIssue)
	if i < 0 || i >= c.d.n {
		return worklogRec{}, false
	}
	n := c.d.worklogCount(i)
	if k >= n {
		return worklogRec{}, false
	}
	return c.d.genWorklog(i, k, n), true
}

// worklogIssue is the issue of a worklog id, without generating it.
func (s *Sim) worklogIssue(c corpus, id int64) (int, bool) {
	if id >= plantedBase {
		w, ok := s.model.items().wlByID[id]
		return w.Issue, ok
	}
	i, k := int(id/perIssue)-10001, int(id%perIssue)
	return i, i >= 0 && i < c.d.n && k < c.d.worklogCount(i)
}

// worklogsByUpdated is every generated worklog by update time, then id;
// built once, on the first incremental pull.
func (s *Sim) worklogsByUpdated() []worklogStamp {
	m := &s.model
	m.byUpdatedOnce.Do(func() {
		var all []worklogStamp
		for i := 0; i < s.data.n; i++ {
			if s.data.worklogCount(i) == 0 {
				continue
			}
			for _, w := range s.data.genWorklogs(i) {
				all = append(all, worklogStamp{ms: w.Updated.UnixMilli(), id: w.ID})
			}
		}
		sort.Slice(all, func(a, b int) bool {
			if all[a].ms != all[b].ms {
				return all[a].ms < all[b].ms
			}
			return all[a].id < all[b].id
		})
		m.byUpdated = all
	})
	return m.byUpdated
}

// timeSpent is the sum of an issue's worklogs in seconds.
func (s *Sim) timeSpent(c corpus, i int) int {
	t := 0
	for _, w := range s.worklogs(c, i) {
		t += w.Seconds
	}
	return t
}

// originalEstimate in seconds, 0 for none.
func (d *dataset) originalEstimate(i int) int {
	if i >= d.n {
		return 0
	}
	h := d.h(i, saltEstimate)
	if h%3 == 0 {
		return 0
	}
	return int(1+h>>8%24) * 3600
}

// ---- comments

func (d *dataset) commentCount(i int) int {
	h := d.h(i, saltComment)
	if h%60 == 11 {
		return 12 + int(h>>8%20)
	}
	return int(h >> 8 % 4)
}

// commentBodies are rich ADF: marks, mentions, lists, code, line breaks,
// emoji and CSV hazards, so a plain-text rendering has real work to do.
var commentBodies = []func(mention string, name string) map[string]any{
	func(_, _ string) map[string]any { return adf("Looks good to me.") },
	func(id, name string) map[string]any {
		return doc(para(text("Thanks "), node("mention", map[string]any{"id": id, "text": "@" + name, "accessLevel": ""}), text(", merging now.")))
	},
	func(_, _ string) map[string]any {
		return doc(para(text("Steps:")), map[string]any{"type": "bulletList", "content": []any{
			map[string]any{"type": "listItem", "content": []any{para(text("open the invoice export"))}},
			map[string]any{"type": "listItem", "content": []any{para(text("click \"Download\"; wait"))}},
		}})
	},
	func(_, _ string) map[string]any {
		return doc(para(text("Stack trace:")), map[string]any{"type": "codeBlock", "attrs": map[string]any{"language": "text"},
			"content": []any{text("java.lang.NullPointerException\n\tat Export.run(Export.java:42)")}})
	},
	func(_, _ string) map[string]any {
		return doc(para(map[string]any{"type": "text", "text": "See the runbook", "marks": []any{
			map[string]any{"type": "link", "attrs": map[string]any{"href": "https://example.invalid/runbook"}}}},
			map[string]any{"type": "hardBreak"}, text("=SUM(A1:A9) is what finance uses "), node("emoji", map[string]any{"shortName": ":thumbsup:", "text": "👍"})))
	},
	func(_, _ string) map[string]any {
		return doc(para(map[string]any{"type": "text", "text": "Blocked", "marks": []any{map[string]any{"type": "strong"}}}, text(" until the release; cc ops, infra")))
	},
}

func doc(content ...any) map[string]any {
	return map[string]any{"type": "doc", "version": 1, "content": content}
}
func para(content ...any) map[string]any {
	return map[string]any{"type": "paragraph", "content": content}
}
func text(t string) map[string]any { return map[string]any{"type": "text", "text": t} }
func node(typ string, attrs map[string]any) map[string]any {
	return map[string]any{"type": typ, "attrs": attrs}
}

func (d *dataset) genComments(is *issue) []commentRec {
	i := is.idx
	if i >= d.n {
		return nil
	}
	n := d.commentCount(i)
	out := make([]commentRec, 0, n)
	span := is.Updated.Sub(is.Created)
	for k := 0; k < n; k++ {
		h := d.h(i*perIssue+k, saltCommentText)
		created := is.Created.Add(span * time.Duration(k+1) / time.Duration(n+1)).Truncate(time.Second)
		updated := created
		if h%6 == 0 {
			updated = created.Add(is.Updated.Sub(created) / 3).Truncate(time.Second)
		}
		out = append(out, commentRec{
			ID: int64(is.ID)*perIssue + int64(k), Issue: i, Author: d.pick(is.Project, h>>8), Created: created, Updated: updated,
			tmpl: int(h >> 40 % uint64(len(commentBodies))), other: d.pick(is.Project, h>>24),
		})
	}
	return out
}

// comments are an issue's comments, generated then planted, by id.
func (s *Sim) comments(c corpus, i int) []commentRec {
	out := s.data.genComments(c.issue(i))
	if pl := s.model.items().comments[i]; len(pl) > 0 {
		out = append(out, pl...)
	}
	return out
}

// ---- issue links

type linkType struct{ ID, Name, Inward, Outward string }

var linkTypes = []linkType{
	{"10000", "Blocks", "is blocked by", "blocks"},
	{"10001", "Cloners", "is cloned by", "clones"},
	{"10002", "Duplicate", "is duplicated by", "duplicates"},
	{"10003", "Relates", "relates to", "relates to"},
}

// linkWindow bounds how far back an issue links, so the inward links of an
// issue are found by looking at the next linkWindow issues only.
const linkWindow = 20

// outwardLink is the one outward link of generated issue i, if any: to an
// earlier issue of the same project (so whoever sees one end sees both).
func (d *dataset) outwardLink(i int) (target, typ int, ok bool) {
	if i >= d.n {
		return 0, 0, false
	}
	h := d.h(i, saltLink)
	if h%4 != 0 {
		return 0, 0, false
	}
	p := d.projectOf(i)
	j := i - 1 - int(h>>8%linkWindow)
	if j < d.starts[p] {
		return 0, 0, false
	}
	return j, int(h >> 16 % uint64(len(linkTypes))), true
}

type issueLinkRec struct {
	ID      int64
	Type    int
	Other   int  // the linked issue
	Outward bool // the link points from this issue to Other
}

// links are issue i's links: its outward one, then the inward ones.
func (d *dataset) links(i int) []issueLinkRec {
	if i >= d.n {
		return nil
	}
	var out []issueLinkRec
	if j, typ, ok := d.outwardLink(i); ok {
		out = append(out, issueLinkRec{ID: int64(10001+i)*10 + 1, Type: typ, Other: j, Outward: true})
	}
	for k := i + 1; k <= i+linkWindow && k < d.n; k++ {
		if j, typ, ok := d.outwardLink(k); ok && j == i {
			out = append(out, issueLinkRec{ID: int64(10001+k)*10 + 1, Type: typ, Other: k})
		}
	}
	return out
}

// ---- boards and sprints

const sprintLength = 14 * 24 * time.Hour

// sprintCount: two-week sprints from the data's first day; the one holding
// the data's last day is active, one more is planned.
var sprintCount = int(dataEnd.Sub(dataStart)/sprintLength) + 2

type sprintRec struct {
	ID, Board, Project, K int
	Name, State, Goal     string
	Start, End, Complete  time.Time // zero for a future sprint
}

func sprintID(p, k int) int { return p*100 + k + 1 }

func (d *dataset) sprint(p, k int) sprintRec {
	start := dataStart.Add(sprintLength * time.Duration(k))
	end := start.Add(sprintLength)
	sp := sprintRec{ID: sprintID(p, k), Board: p + 1, Project: p, K: k, Name: fmt.Sprintf("%s Sprint %d", d.projects[p].Key, k+1)}
	if g := d.h(p*perIssue+k, saltSprint); g%3 != 0 {
		sp.Goal = []string{"Ship the invoice export", "Stabilise search", "Pay down tech debt", "Onboarding v2"}[g>>8%4]
	}
	switch {
	case !end.After(dataEnd):
		sp.State, sp.Start, sp.End, sp.Complete = "closed", start, end, end.Add(-2*time.Hour)
	case !start.After(dataEnd):
		sp.State, sp.Start, sp.End = "active", start, end
	default:
		sp.State = "future"
	}
	return sp
}

// sprintByID decodes a sprint id.
func (d *dataset) sprintByID(id int) (sprintRec, bool) {
	if id <= 0 {
		return sprintRec{}, false
	}
	p, k := (id-1)/100, (id-1)%100
	if p >= len(d.projects) || k >= sprintCount {
		return sprintRec{}, false
	}
	return d.sprint(p, k), true
}

// sprintsOf are the sprints issue i was in, oldest first: the one running
// when it was created, and the next one too when it was carried over.
// Epics and three issues in ten are in none.
func (d *dataset) sprintsOf(i int) []int {
	if i >= d.n {
		return nil
	}
	h := d.h(i, saltSprint)
	if h%10 >= 7 || issueTypes[d.h(i, saltType)%uint64(len(issueTypes))].Name == "Epic" {
		return nil
	}
	k := int(d.created(i).Sub(dataStart) / sprintLength)
	if k >= sprintCount-1 {
		return nil
	}
	out := []int{k}
	if h>>8%4 == 0 && k+1 < sprintCount-1 {
		out = append(out, k+1)
	}
	return out
}

// sprintIssues are the generated issues of sprint (p, k), in id order.
func (d *dataset) sprintIssues(p, k int) []int {
	lo, hi := d.starts[p], d.starts[p+1]
	from := dataStart.Add(sprintLength * time.Duration(k-1))
	to := dataStart.Add(sprintLength * time.Duration(k+1))
	a := lo + sort.Search(hi-lo, func(x int) bool { return !d.created(lo + x).Before(from) })
	b := lo + sort.Search(hi-lo, func(x int) bool { return !d.created(lo + x).Before(to) })
	var out []int
	for i := a; i < b; i++ {
		for _, s := range d.sprintsOf(i) {
			if s == k {
				out = append(out, i)
			}
		}
	}
	return out
}

// boardRec: each project has a scrum board (id = project index + 1); the
// first project also has a kanban board, which has no sprints.
type boardRec struct {
	ID, Project int
	Name, Type  string
}

func (d *dataset) boards() []boardRec {
	out := make([]boardRec, 0, len(d.projects)+1)
	for p, pr := range d.projects {
		out = append(out, boardRec{ID: p + 1, Project: p, Name: pr.Key + " board", Type: "scrum"})
	}
	if len(d.projects) > 0 {
		out = append(out, boardRec{ID: len(d.projects) + 1, Project: 0, Name: d.projects[0].Key + " kanban", Type: "kanban"})
	}
	return out
}

// ---- components, attachments, votes, watchers, extra values

var componentNames = []string{"Backend", "Frontend", "API", "Database", "Mobile app", "Billing engine", "Search; indexing", "Infra"}

type componentRec struct {
	ID          int
	Name        string
	Description string
	Lead        int // -1 none
}

// components of project p: three, with ids 10000 + 10p + k.
func (d *dataset) components(p int) []componentRec {
	out := make([]componentRec, 3)
	for k := range out {
		h := d.h(p*perIssue+k, saltComponent)
		c := componentRec{ID: 10000 + p*10 + k, Name: componentNames[(p*3+k)%len(componentNames)], Lead: -1}
		if h%2 == 0 {
			c.Lead = d.pick(p, h>>8)
		}
		if h%3 != 0 {
			c.Description = "Everything about " + strings.ToLower(c.Name) + "."
		}
		out[k] = c
	}
	return out
}

// issueComponents are indexes into the project's components.
func (d *dataset) issueComponents(i int) []int {
	if i >= d.n {
		return nil
	}
	h := d.h(i, saltComponent)
	switch h % 4 {
	case 1, 2:
		return []int{int(h >> 8 % 3)}
	case 3:
		a := int(h >> 8 % 3)
		return []int{a, (a + 1) % 3}
	}
	return nil
}

var attachmentFiles = []struct{ Name, Mime string }{
	{"screenshot.png", "image/png"}, {"server.log", "text/plain"}, {"invoice;2024.csv", "text/csv"},
	{"report \"final\".pdf", "application/pdf"}, {"données.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
}

type attachmentRec struct {
	ID      int
	File    string
	Mime    string
	Size    int
	Author  int
	Created time.Time
}

func (d *dataset) attachments(is *issue) []attachmentRec {
	if is.idx >= d.n {
		return nil
	}
	h := d.h(is.idx, saltAttach)
	n := []int{0, 0, 0, 1, 2}[h%5]
	out := make([]attachmentRec, n)
	for k := range out {
		f := attachmentFiles[(h>>(8+8*k))%uint64(len(attachmentFiles))]
		out[k] = attachmentRec{ID: is.ID*10 + k, File: f.Name, Mime: f.Mime, Size: int(1+(h>>(12+8*k))%4096) * 37,
			Author: d.pick(is.Project, h>>(16+8*k)), Created: is.Created.Add(time.Duration(k+1) * time.Minute)}
	}
	return out
}

func (d *dataset) votes(i int) int {
	if i >= d.n {
		return 0
	}
	return int(d.h(i, saltVotes) % 6)
}

func (d *dataset) watchers(i int) int {
	if i >= d.n {
		return 1 // the reporter watches what they create
	}
	return 1 + int(d.h(i, saltVotes)>>8%5)
}

// regions are the cascading select's options: parent, then children.
var regions = []struct {
	ID, Value string
	Children  []struct{ ID, Value string }
}{
	{"10300", "EMEA", []struct{ ID, Value string }{{"10310", "Berlin"}, {"10311", "London"}, {"10312", "Paris"}}},
	{"10301", "AMER", []struct{ ID, Value string }{{"10320", "New York"}, {"10321", "São Paulo"}}},
	{"10302", "APAC", []struct{ ID, Value string }{{"10330", "Tokyo"}, {"10331", "Sydney"}}},
}

// region: parent index and child index (-1: parent only); parent -1: empty.
func (d *dataset) region(i int) (int, int) {
	if i >= d.n {
		return -1, -1
	}
	h := d.h(i, saltRegion)
	if h%4 == 0 {
		return -1, -1
	}
	p := int(h >> 8 % uint64(len(regions)))
	if h>>16%5 == 0 {
		return p, -1
	}
	return p, int(h >> 24 % uint64(len(regions[p].Children)))
}

// ---- time and durations

// jiraDuration writes seconds the way Jira shows time tracking: weeks of
// five days, days of eight hours ("1w 2d 3h 30m"); "0m" for none.
func jiraDuration(sec int) string {
	neg := sec < 0
	if neg {
		sec = -sec
	}
	units := []struct {
		n int
		s string
	}{{5 * 8 * 3600, "w"}, {8 * 3600, "d"}, {3600, "h"}, {60, "m"}}
	var parts []string
	for _, u := range units {
		if sec >= u.n {
			parts = append(parts, strconv.Itoa(sec/u.n)+u.s)
			sec %= u.n
		}
	}
	if len(parts) == 0 {
		return "0m"
	}
	out := strings.Join(parts, " ")
	if neg {
		out = "-" + out
	}
	return out
}

// friendlyDuration is the SLA's clock form: "8h", "-1h 20m", "45m".
func friendlyDuration(ms int64) string {
	neg := ms < 0
	if neg {
		ms = -ms
	}
	m := ms / 60000
	var out string
	switch h := m / 60; {
	case h > 0 && m%60 > 0:
		out = fmt.Sprintf("%dh %dm", h, m%60)
	case h > 0:
		out = fmt.Sprintf("%dh", h)
	default:
		out = fmt.Sprintf("%dm", m)
	}
	if neg {
		out = "-" + out
	}
	return out
}
