package jirasim

import (
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// The dataset is generated from (seed, index) on demand: only users,
// projects and project boundaries are held in memory, so a million issues
// cost no more than a thousand. Issue i (0-based) has id 10001+i. Projects
// own contiguous blocks of indices in key order, and created times grow
// with the index, so id order, key order and created order coincide for
// generated issues and paging can walk indices without sorting.

// mix is splitmix64 over (seed, index, salt): cheap, stateless, and good
// enough to make every attribute independent of the others.
func mix(seed uint64, i int, salt uint64) uint64 {
	z := seed + uint64(i)*0x9E3779B97F4A7C15 + salt*0xBF58476D1CE4E5B9
	z ^= z >> 30
	z *= 0xBF58476D1CE4E5B9
	z ^= z >> 27
	z *= 0x94D049BB133111EB
	z ^= z >> 31
	return z
}

const (
	saltStatus = iota + 1
	saltPriority
	saltType
	saltAssignee
	saltReporter
	saltCreated
	saltUpdated
	saltSummary1
	saltSummary2
	saltSummary3
	saltLabels
	saltVersion
	saltPoints
	saltTeam
	saltReview
	saltGoLive
	saltReviewers
	saltChangelog
	saltProject
	saltUser
	saltNotes
	saltTags
)

// Fixed reference times keep the data independent of the wall clock.
var (
	dataStart = time.Date(2022, 1, 3, 9, 0, 0, 0, time.UTC)
	dataEnd   = time.Date(2024, 12, 20, 17, 0, 0, 0, time.UTC)
)

// jiraTime is Jira's REST timestamp format.
const jiraTime = "2006-01-02T15:04:05.000-0700"

func fmtJiraTime(t time.Time) string { return t.UTC().Format(jiraTime) }

type statusDef struct {
	ID, Name, Desc string
	CatID          int
	CatKey, Color  string
	CatName        string
}

// Workflow order: changelogs walk this list up to the issue's status.
var statuses = []statusDef{
	{"10000", "To Do", "Work that has not started.", 2, "new", "blue-gray", "To Do"},
	{"3", "In Progress", "Work in progress.", 4, "indeterminate", "yellow", "In Progress"},
	{"10001", "In Review", "Waiting for review.", 4, "indeterminate", "yellow", "In Progress"},
	{"10002", "Done", "Work is done.", 3, "done", "green", "Done"},
}

var priorities = []struct{ ID, Name string }{
	{"1", "Highest"}, {"2", "High"}, {"3", "Medium"}, {"4", "Low"}, {"5", "Lowest"},
}

var issueTypes = []struct {
	ID, Name, Desc string
	Avatar         int
}{
	{"10001", "Task", "A small, distinct piece of work.", 10318},
	{"10002", "Bug", "A problem or error.", 10303},
	{"10003", "Story", "A user story.", 10315},
	{"10004", "Epic", "A big user story that needs to be broken down.", 10307},
}

var teams = []struct{ ID, Value string }{
	{"10100", "Platform"}, {"10101", "Payments"}, {"10102", "Growth"}, {"10103", "Mobile"},
}

// notesPool is the text of the "Notes" field: everything a CSV writer or a
// spreadsheet can trip over (line breaks of every kind, quotes, separators,
// formula starts, apostrophes, edge spaces, non-ASCII).
var notesPool = []string{
	"Line one\nline two",
	"Windows line\r\nending",
	"old Mac\rreturn",
	"bare CR at the end\r",
	`=HYPERLINK("http://example.invalid","click")`,
	"+1 from support",
	"-5 points; see =SUM(A1:A3)",
	"@channel heads up",
	"\tindented with a tab",
	`quote "inside" and, a comma`,
	"semi;colon;separated",
	"'already quoted",
	"  leading and trailing spaces  ",
	"ünïcödé — “smart quotes” ✓ 日本語",
	`back\slash \; escaped?`,
	"tab\t=inside",
	"Plain notes.",
}

// tagPool is the options of the "Tags" multi-select field.
var tagPool = []struct{ ID, Value string }{
	{"10200", "R&D"}, {"10201", "ops; infra"}, {"10202", "=cmd|' /C calc'!A0"}, {"10203", `back\slash`},
	{"10204", "plain"}, {"10205", "-minus"}, {"10206", "Plain"},
}

var labelPool = []string{"backend", "frontend", "customer", "regression", "security", "tech-debt", "ux", "performance"}

var (
	verbs   = []string{"Fix", "Add", "Improve", "Remove", "Refactor", "Document", "Investigate", "Speed up", "Migrate", "Test"}
	objects = []string{"login", "checkout", "invoice export", "search", "dashboard", "user profile", "billing", "notifications", "API client", "audit log", "CSV import", "mobile menu"}
	tails   = []string{"for admins", "on Safari", "after upgrade", "in EU region", "under load", "for new users", "in dark mode", "on slow networks", "with SSO", "for large tenants"}
)

var (
	firstNames = []string{"Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Dennis", "Frances", "Ken", "Radia", "Edsger", "Hedy", "John", "Katherine", "Tim", "Sophie", "Niklaus", "Anita", "Donald", "Mary"}
	lastNames  = []string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Ritchie", "Allen", "Thompson", "Perlman", "Dijkstra", "Lamarr", "Backus", "Johnson", "Berners-Lee", "Wilson", "Wirth", "Borg", "Knuth", "Jackson"}
	projWords  = []string{"Apollo", "Billing", "Core", "Data", "Edge", "Finance", "Gateway", "Helpdesk", "Infra", "Journey", "Kiosk", "Ledger", "Mobile", "Nova", "Ops", "Portal", "Quartz", "Reports", "Search", "Tools", "Unity", "Vault", "Web", "Xpress", "Yield", "Zenith"}
)

type project struct {
	ID       int
	Key      string
	Name     string
	Lead     int
	Versions []version
}

type version struct {
	ID       int
	Name     string
	Released bool
	Archived bool
	Date     string // release date
	Start    string // start date
}

// User is a simulated Jira account. APIToken is its password for HTTP Basic.
type User struct {
	AccountID    string
	DisplayName  string
	Email        string
	APIToken     string
	Admin        bool     // site admin: browses every project
	Projects     []string // keys of the projects this user may browse
	EmailVisible bool     // profile visibility lets others see the email
	Closed       bool     // account closed: cannot sign in, reported as closed
	TimeZone     string
	Updated      time.Time // last profile change, for personal data reporting

	Groups            []string // as of the call to Sim.Users
	GlobalPermissions []string // as of the call to Sim.Users, e.g. ADMINISTER

	browse []bool   // by project index
	groups []string // guarded by Sim.mu once the site runs (SetUserAccess)
	global []string // global permission keys, likewise
}

type dataset struct {
	seed     uint64
	n        int
	projects []project
	starts   []int // starts[p] is the first index of project p; starts[len] == n
	users    []User
	byKey    map[string]int // project key → index
	byEmail  map[string]int
	byAcct   map[string]int
	// memo keeps generated issues of small sites (tests, the demo), where
	// JQL evaluation would otherwise generate each issue once per clause.
	// Large sites generate on demand and stay small in memory.
	memo []atomic.Pointer[issue]
	// browserLists[p] are the active users who browse project p (model.go).
	browserLists [][]int
}

const memoIssues = 20000

func newDataset(seed int64, issues, projects, users int) *dataset {
	d := &dataset{seed: uint64(seed), n: issues, byKey: map[string]int{}, byEmail: map[string]int{}, byAcct: map[string]int{}}
	if issues <= memoIssues {
		d.memo = make([]atomic.Pointer[issue], issues)
	}
	d.genUsers(users)
	d.genProjects(projects)
	d.genPermissions()
	d.genBrowsers()
	return d
}

func (d *dataset) h(i int, salt uint64) uint64 { return mix(d.seed, i, salt) }

func (d *dataset) genUsers(n int) {
	zones := []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Tokyo"}
	for i := 0; i < n; i++ {
		h := d.h(i, saltUser)
		first := firstNames[(i+int(h%7))%len(firstNames)]
		last := lastNames[(i*7+int(h>>8%11))%len(lastNames)]
		if i == 0 {
			first, last = "Ada", "Admin"
		}
		local := strings.ToLower(first + "." + strings.ReplaceAll(last, "-", ""))
		if i > 0 {
			local = fmt.Sprintf("%s%d", local, i)
		}
		u := User{
			AccountID:   fmt.Sprintf("712020:%08x-%04x-%04x-%04x-%012x", uint32(h), uint16(h>>32), 0x4000|uint16(h>>40)&0x0fff, 0x8000|uint16(h>>48)&0x3fff, d.h(i, saltUser+1)&0xffffffffffff),
			DisplayName: first + " " + last,
			Email:       local + "@example.com",
			// Shaped like Atlassian API tokens; derived from the seed so the
			// same seed gives the same credentials.
			APIToken:     fmt.Sprintf("ATATT3xFfGF0%016x%016x", d.h(i, saltUser+2), d.h(i, saltUser+3)),
			Admin:        i == 0,
			EmailVisible: i < 2 || h%10 < 6,
			Closed:       i >= 3 && h%10 == 9,
			TimeZone:     zones[h%uint64(len(zones))],
			Updated:      dataEnd.Add(-time.Duration(h%(400*24)) * time.Hour),
		}
		if i == n-1 && n >= 4 && !d.anyClosed() {
			u.Closed = true // reporting tests need at least one closed account
		}
		d.users = append(d.users, u)
		d.byEmail[strings.ToLower(u.Email)] = i
		d.byAcct[u.AccountID] = i
	}
}

func (d *dataset) anyClosed() bool {
	for _, u := range d.users {
		if u.Closed {
			return true
		}
	}
	return false
}

func (d *dataset) genProjects(m int) {
	keys := make([]string, 0, m)
	names := map[string]string{}
	for p := 0; p < m; p++ {
		w := projWords[p%len(projWords)]
		key := strings.ToUpper(w[:min(len(w), 4)])
		name := w
		if p >= len(projWords) {
			key = fmt.Sprintf("%s%d", key, p/len(projWords))
			name = fmt.Sprintf("%s %d", w, p/len(projWords))
		}
		keys = append(keys, key)
		names[key] = name
	}
	sort.Strings(keys)
	// Uneven block sizes: weights 1..3, like real sites with a big project
	// and a few small ones.
	weights := make([]uint64, m)
	var total uint64
	for p := range weights {
		weights[p] = 1 + d.h(p, saltProject)%3
		total += weights[p]
	}
	d.starts = make([]int, m+1)
	acc := uint64(0)
	for p, key := range keys {
		d.starts[p] = int(acc * uint64(d.n) / max(total, 1))
		acc += weights[p]
		pr := project{ID: 10000 + p, Key: key, Name: names[key]}
		if len(d.users) > 0 {
			pr.Lead = int(d.h(p, saltProject+1) % uint64(len(d.users)))
		}
		for v := 0; v < 3; v++ {
			rel := dataStart.AddDate(0, 8*(v+1), 0)
			pr.Versions = append(pr.Versions, version{ID: 10000 + p*10 + v, Name: fmt.Sprintf("%d.%d", 1+v/2, v%2), Released: v < 2,
				Date: rel.Format("2006-01-02"), Start: rel.AddDate(0, -8, 0).Format("2006-01-02")})
		}
		// An archived pre-release no issue is fixed in, as sites keep them.
		pr.Versions = append(pr.Versions, version{ID: 10000 + p*10 + 3, Name: "0.9", Released: true, Archived: true,
			Date: dataStart.AddDate(0, 2, 0).Format("2006-01-02")})
		d.projects = append(d.projects, pr)
		d.byKey[key] = p
	}
	d.starts[m] = d.n
}

// genPermissions decides who browses what: the admin sees everything, user 1
// sees only the first project (the canonical "restricted user"), and the rest
// get seeded non-empty subsets.
func (d *dataset) genPermissions() {
	m := len(d.projects)
	for i := range d.users {
		u := &d.users[i]
		u.browse = make([]bool, m)
		switch {
		case i == 0:
			for p := range u.browse {
				u.browse[p] = true
			}
		case i == 1 && m > 0:
			u.browse[0] = true
		case m > 0:
			h := d.h(i, saltUser+4)
			for p := range u.browse {
				u.browse[p] = h>>(p%64)&1 == 1
			}
			u.browse[int(h>>32)%m] = true
		}
		for p, ok := range u.browse {
			if ok {
				u.Projects = append(u.Projects, d.projects[p].Key)
			}
		}
		u.groups = []string{"jira-users", "jira-software-users"}
		u.global = defaultGlobal
		if u.Admin {
			u.groups = append([]string{"jira-administrators", "site-admins"}, u.groups...)
			u.global = adminGlobal
		}
	}
}

// projectOf finds the block holding generated index i.
func (d *dataset) projectOf(i int) int {
	return sort.Search(len(d.projects), func(p int) bool { return d.starts[p+1] > i })
}

func (d *dataset) keyNum(i, p int) int { return i - d.starts[p] + 1 }

func (d *dataset) created(i int) time.Time {
	step := dataEnd.Sub(dataStart) / time.Duration(max(d.n, 1))
	// Jitter stays below one step, so created order equals index order.
	var jit time.Duration
	if step > time.Second {
		jit = time.Duration(d.h(i, saltCreated) % uint64(step/time.Second) * uint64(time.Second))
	}
	return dataStart.Add(step*time.Duration(i) + jit).Truncate(time.Second)
}

func (d *dataset) updated(i int) time.Time {
	c := d.created(i)
	u := c.Add(time.Duration(d.h(i, saltUpdated)%(90*24*3600)) * time.Second)
	if u.After(dataEnd) {
		u = dataEnd
	}
	if u.Before(c) {
		u = c
	}
	return u
}

func (d *dataset) status(i int) int {
	switch r := d.h(i, saltStatus) % 100; {
	case r < 25:
		return 0
	case r < 45:
		return 1
	case r < 55:
		return 2
	default:
		return 3
	}
}

func (d *dataset) userIndex(i int, salt uint64) int {
	if len(d.users) == 0 {
		return -1
	}
	return int(d.h(i, salt) % uint64(len(d.users)))
}

// issue holds one issue's attributes, generated or created via REST.
type issue struct {
	idx         int
	ID          int
	Project     int
	KeyNum      int
	Summary     string
	Description any // ADF document
	Status      int
	Priority    int
	Type        int
	Assignee    int // user index, -1 unassigned
	Reporter    int
	Created     time.Time
	Updated     time.Time
	Labels      []string
	FixVersions []int // indexes into the project's versions
	Points      *float64
	Team        int // -1 none
	ReviewDate  string
	GoLive      *time.Time
	Reviewers   []int
	Notes       string // "" for none
	Tags        []int  // indexes into tagPool
}

// issue returns generated issue i; callers must not change it.
func (d *dataset) issue(i int) *issue {
	if d.memo == nil {
		return d.genIssue(i)
	}
	if is := d.memo[i].Load(); is != nil {
		return is
	}
	is := d.genIssue(i)
	d.memo[i].Store(is)
	return is
}

func (d *dataset) genIssue(i int) *issue {
	p := d.projectOf(i)
	is := &issue{
		idx: i, ID: 10001 + i, Project: p, KeyNum: d.keyNum(i, p),
		Status:   d.status(i),
		Priority: int(d.h(i, saltPriority) % uint64(len(priorities))),
		Type:     int(d.h(i, saltType) % uint64(len(issueTypes))),
		Assignee: -1,
		Reporter: d.userIndex(i, saltReporter),
		Created:  d.created(i),
		Updated:  d.updated(i),
		Team:     -1,
	}
	if d.h(i, saltAssignee)%100 >= 15 {
		is.Assignee = d.userIndex(i, saltAssignee+100)
	}
	s1, s2, s3 := d.h(i, saltSummary1), d.h(i, saltSummary2), d.h(i, saltSummary3)
	is.Summary = verbs[s1%uint64(len(verbs))] + " " + objects[s2%uint64(len(objects))] + " " + tails[s3%uint64(len(tails))]
	is.Description = adfText(is.Summary + ". Reported by the " + teams[s2%uint64(len(teams))].Value + " team; see the linked runbook for steps to reproduce.")
	lh := d.h(i, saltLabels)
	for k := 0; k < int(lh%3); k++ {
		l := labelPool[(lh>>(8*(k+1)))%uint64(len(labelPool))]
		if len(is.Labels) == 0 || is.Labels[len(is.Labels)-1] != l {
			is.Labels = append(is.Labels, l)
		}
	}
	if is.Labels == nil {
		is.Labels = []string{}
	}
	if vh := d.h(i, saltVersion); vh%3 != 0 {
		is.FixVersions = []int{int(vh>>8) % 3}
	}
	if ph := d.h(i, saltPoints); ph%4 != 0 {
		pts := float64([]int{1, 2, 3, 5, 8, 13}[ph>>8%6])
		is.Points = &pts
	}
	if th := d.h(i, saltTeam); th%5 != 0 {
		is.Team = int(th>>8) % len(teams)
	}
	if rh := d.h(i, saltReview); rh%2 == 0 {
		is.ReviewDate = is.Created.AddDate(0, 0, int(rh>>8%60)).Format("2006-01-02")
	}
	if gh := d.h(i, saltGoLive); gh%3 == 0 {
		t := is.Created.Add(time.Duration(gh>>8%(120*24)) * time.Hour)
		is.GoLive = &t
	}
	if nh := d.h(i, saltNotes); nh%3 == 0 {
		is.Notes = notesPool[(nh>>8)%uint64(len(notesPool))]
	}
	th := d.h(i, saltTags)
	for k := 0; k < int(th%3); k++ {
		t := int((th >> (8 * (k + 1))) % uint64(len(tagPool)))
		if len(is.Tags) == 0 || is.Tags[len(is.Tags)-1] != t {
			is.Tags = append(is.Tags, t)
		}
	}
	if rv := d.h(i, saltReviewers); rv%2 == 0 && len(d.users) > 0 {
		for k := 0; k < 1+int(rv>>4%2); k++ {
			u := int(rv>>(8+8*k)) % len(d.users)
			if len(is.Reviewers) == 0 || is.Reviewers[0] != u {
				is.Reviewers = append(is.Reviewers, u)
			}
		}
	}
	return is
}

// adf wraps plain text in a minimal Atlassian Document Format document.
func adf(text string) map[string]any {
	return map[string]any{
		"type": "doc", "version": 1,
		"content": []any{map[string]any{
			"type":    "paragraph",
			"content": []any{map[string]any{"type": "text", "text": text}},
		}},
	}
}

// changeEntry is one history item of the deterministic changelog: the issue
// walks the workflow from To Do to its current status, and some issues
// also had their priority raised once.
type changeEntry struct {
	ID      int
	Author  int
	Created time.Time
	Field   string
	From    string
	FromStr string
	To      string
	ToStr   string
}

func (d *dataset) changelog(is *issue) []changeEntry {
	var out []changeEntry
	steps := is.Status
	span := is.Updated.Sub(is.Created)
	n := steps
	h := d.h(is.idx, saltChangelog)
	// Generated issues only: REST-created ones start with no history.
	bumped := is.idx < d.n && h%4 == 0 && is.Priority < len(priorities)-1
	if bumped {
		n++
	}
	for k := 0; k < steps; k++ {
		at := is.Created.Add(span * time.Duration(k+1) / time.Duration(n+1)).Truncate(time.Second)
		out = append(out, changeEntry{
			ID: is.ID*10 + k, Author: d.userIndex(is.idx+k, saltChangelog+1), Created: at, Field: "status",
			From: statuses[k].ID, FromStr: statuses[k].Name, To: statuses[k+1].ID, ToStr: statuses[k+1].Name,
		})
	}
	if bumped {
		out = append(out, changeEntry{
			ID: is.ID*10 + 9, Author: d.userIndex(is.idx, saltChangelog+2), Created: is.Updated, Field: "priority",
			From: priorities[is.Priority+1].ID, FromStr: priorities[is.Priority+1].Name,
			To: priorities[is.Priority].ID, ToStr: priorities[is.Priority].Name,
		})
	}
	return out
}
