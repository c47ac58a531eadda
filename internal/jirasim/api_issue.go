package jirasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxBulkFetch = 100

type issueError struct {
	ID           string `json:"id"`
	ErrorMessage string `json:"errorMessage"`
}

const notFoundMsg = "Issue does not exist or you do not have permission to see it."

// handleBulkFetch returns issues in the order requested; ones the caller
// cannot see are left out silently, malformed ids or keys are reported.
func (s *Sim) handleBulkFetch(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	var req struct {
		IssueIDsOrKeys []string `json:"issueIdsOrKeys"`
		Fields         []string `json:"fields"`
		Expand         []string `json:"expand"`
		Properties     []string `json:"properties"`
		FieldsByKeys   bool     `json:"fieldsByKeys"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch n := len(req.IssueIDsOrKeys); {
	case n == 0:
		fieldErrors(w, http.StatusBadRequest, map[string]string{"issueIdsOrKeys": "You must provide at least one issue ID or key."})
		return
	case n > maxBulkFetch:
		fieldErrors(w, http.StatusBadRequest, map[string]string{"issueIdsOrKeys": fmt.Sprintf("You can request at most %d issues, but %d were requested.", maxBulkFetch, n)})
		return
	}
	sel := parseFields(req.Fields, "*navigable")
	c := s.snapshot()
	base := s.BaseURL()
	var issueErrors []issueError
	b := append(make([]byte, 0, 64<<10), `{"issues":[`...)
	seen := map[int]bool{}
	for _, ref := range req.IssueIDsOrKeys {
		i, ok, malformed := c.lookup(strings.TrimSpace(ref))
		if malformed {
			issueErrors = append(issueErrors, issueError{ID: ref, ErrorMessage: fmt.Sprintf("Issue key or id '%s' is invalid.", ref)})
			continue
		}
		if !ok || !p.browse[c.project(i)] || seen[i] {
			continue
		}
		if len(seen) > 0 {
			b = append(b, ',')
		}
		seen[i] = true
		b = s.appendIssue(b, base, c, i, sel)
	}
	if issueErrors == nil {
		issueErrors = []issueError{}
	}
	chargeObjects(w, len(seen))
	b = append(b, `],"issueErrors":`...)
	b = append(b, mustJSON(issueErrors)...)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

func (s *Sim) handleGetIssue(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	c := s.snapshot()
	i, ok, _ := c.lookup(r.PathValue("issueIdOrKey"))
	if !ok || !p.browse[c.project(i)] {
		jiraError(w, http.StatusNotFound, notFoundMsg)
		return
	}
	q := r.URL.Query()
	sel := parseFields(q["fields"], "*all")
	sel.include["key"] = true
	base := s.BaseURL()
	b := s.appendIssue(nil, base, c, i, sel)
	if strings.Contains(q.Get("expand"), "changelog") {
		hs := s.histories(base, c.issue(i), nil)
		b = append(b[:len(b)-1], `,"changelog":`...)
		b = append(b, mustJSON(changelogsPage{StartAt: 0, MaxResults: len(hs), Total: len(hs), Histories: hs})...)
		b = append(b, '}')
	}
	chargeObjects(w, 1)
	writeRaw(w, http.StatusOK, b)
}

type changelogsPage struct {
	StartAt    int             `json:"startAt"`
	MaxResults int             `json:"maxResults"`
	Total      int             `json:"total"`
	Histories  []changelogJSON `json:"histories"`
}

type changelogJSON struct {
	ID      string       `json:"id"`
	Author  *userJSON    `json:"author,omitempty"`
	Created string       `json:"created"`
	Items   []changeItem `json:"items"`
}

type changeItem struct {
	Field      string `json:"field"`
	FieldType  string `json:"fieldtype"`
	FieldID    string `json:"fieldId"`
	From       string `json:"from"`
	FromString string `json:"fromString"`
	To         string `json:"to"`
	ToString   string `json:"toString"`
}

func (s *Sim) histories(base string, is *issue, fieldIDs map[string]bool) []changelogJSON {
	out := []changelogJSON{}
	for _, e := range s.data.changelog(is) {
		if fieldIDs != nil && !fieldIDs[e.Field] {
			continue
		}
		out = append(out, changelogJSON{
			ID: strconv.Itoa(e.ID), Author: s.user(base, e.Author), Created: fmtJiraTime(e.Created),
			Items: []changeItem{{Field: e.Field, FieldType: "jira", FieldID: e.Field, From: e.From, FromString: e.FromStr, To: e.To, ToString: e.ToStr}},
		})
	}
	return out
}

const (
	maxChangelogIssues   = 1000
	defaultChangelogPage = 1000
	maxChangelogPage     = 10000
)

// handleChangelogBulkFetch pages through the histories of the requested
// issues, in request order, a history at a time.
func (s *Sim) handleChangelogBulkFetch(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	var req struct {
		IssueIDsOrKeys []string `json:"issueIdsOrKeys"`
		FieldIDs       []string `json:"fieldIds"`
		MaxResults     int      `json:"maxResults"`
		NextPageToken  string   `json:"nextPageToken"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if n := len(req.IssueIDsOrKeys); n == 0 || n > maxChangelogIssues {
		fieldErrors(w, http.StatusBadRequest, map[string]string{"issueIdsOrKeys": fmt.Sprintf("Provide between 1 and %d issue IDs or keys.", maxChangelogIssues)})
		return
	}
	limit := defaultChangelogPage
	if req.MaxResults > 0 {
		limit = min(req.MaxResults, maxChangelogPage)
	}
	var fieldIDs map[string]bool
	if len(req.FieldIDs) > 0 {
		fieldIDs = map[string]bool{}
		for _, f := range req.FieldIDs {
			fieldIDs[f] = true
		}
	}
	fp := fingerprint(strings.Join(req.IssueIDsOrKeys, ",")+"|"+strings.Join(req.FieldIDs, ","), p)
	skip := 0
	if req.NextPageToken != "" {
		var err error
		if skip, err = decodeToken(req.NextPageToken, fp); err != nil {
			jiraError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	c := s.snapshot()
	base := s.BaseURL()
	type issueLogs struct {
		IssueID         string          `json:"issueId"`
		ChangeHistories []changelogJSON `json:"changeHistories"`
	}
	out := struct {
		IssueChangeLogs []issueLogs `json:"issueChangeLogs"`
		NextPageToken   string      `json:"nextPageToken,omitempty"`
	}{IssueChangeLogs: []issueLogs{}}
	seen, emitted, pos := map[int]bool{}, 0, 0
	for _, ref := range req.IssueIDsOrKeys {
		i, ok, _ := c.lookup(strings.TrimSpace(ref))
		if !ok || seen[i] || !p.browse[c.project(i)] {
			continue
		}
		seen[i] = true
		var page []changelogJSON
		for _, h := range s.histories(base, c.issue(i), fieldIDs) {
			switch {
			case pos < skip:
			case emitted < limit:
				page = append(page, h)
				emitted++
			default:
				out.NextPageToken = encodeToken(fp, pos)
			}
			pos++
			if out.NextPageToken != "" {
				break
			}
		}
		if len(page) > 0 {
			out.IssueChangeLogs = append(out.IssueChangeLogs, issueLogs{IssueID: strconv.Itoa(10001 + i), ChangeHistories: page})
		}
		if out.NextPageToken != "" {
			break
		}
	}
	chargeObjects(w, emitted)
	writeJSON(w, http.StatusOK, out)
}

// NewIssue is an issue to plant in the site (e.g. canary strings).
type NewIssue struct {
	Project     string   // key
	Summary     string   // required
	Description string   // plain text, stored as ADF
	IssueType   string   // name; default Task
	Labels      []string // optional
	Reporter    string   // accountId; default the site admin
}

// IssueRef identifies a created issue.
type IssueRef struct {
	ID, Key string
}

// CreateIssue adds an issue as if created through REST; it is searchable
// and fetchable like the generated ones.
func (s *Sim) CreateIssue(in NewIssue) (IssueRef, error) {
	p, ok := s.data.byKey[strings.ToUpper(in.Project)]
	if !ok {
		return IssueRef{}, fmt.Errorf("jirasim: no project %q", in.Project)
	}
	if strings.TrimSpace(in.Summary) == "" {
		return IssueRef{}, fmt.Errorf("jirasim: summary is required")
	}
	typ := 0
	if in.IssueType != "" {
		typ = -1
		for k, t := range issueTypes {
			if strings.EqualFold(t.Name, in.IssueType) {
				typ = k
			}
		}
		if typ < 0 {
			return IssueRef{}, fmt.Errorf("jirasim: no issue type %q", in.IssueType)
		}
	}
	reporter := 0
	if in.Reporter != "" {
		r, ok := s.data.byAcct[in.Reporter]
		if !ok {
			return IssueRef{}, fmt.Errorf("jirasim: no user %q", in.Reporter)
		}
		reporter = r
	}
	return s.addIssue(p, typ, reporter, in.Summary, adfText(in.Description), in.Labels), nil
}

func (s *Sim) addIssue(p, typ, reporter int, summary string, desc any, labels []string) IssueRef {
	if labels == nil {
		labels = []string{}
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	num := s.data.starts[p+1] - s.data.starts[p] + 1
	for _, e := range s.extra {
		if e.Project == p {
			num++
		}
	}
	idx := s.data.n + len(s.extra)
	is := &issue{idx: idx, ID: 10001 + idx, Project: p, KeyNum: num, Summary: summary, Description: desc,
		Status: 0, Priority: 2, Type: typ, Assignee: -1, Reporter: reporter, Created: now, Updated: now,
		Labels: labels, Team: -1}
	// Copy-on-write so snapshots taken earlier stay consistent.
	s.extra = append(s.extra[:len(s.extra):len(s.extra)], is)
	return IssueRef{ID: strconv.Itoa(is.ID), Key: s.data.projects[p].Key + "-" + strconv.Itoa(num)}
}

// handleCreateIssue accepts the v3 create shape: fields.project (key or
// id), summary, issuetype (name or id), description (ADF), labels.
func (s *Sim) handleCreateIssue(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeWrite) {
		forbidden(w)
		return
	}
	var req struct {
		Fields struct {
			Project struct {
				Key string `json:"key"`
				ID  string `json:"id"`
			} `json:"project"`
			Summary   string `json:"summary"`
			IssueType struct {
				Name string `json:"name"`
				ID   string `json:"id"`
			} `json:"issuetype"`
			Description json.RawMessage `json:"description"`
			Labels      []string        `json:"labels"`
		} `json:"fields"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	f := req.Fields
	errs := map[string]string{}
	proj, ok := findProject(s.data, f.Project.Key+f.Project.ID)
	if !ok || !p.browse[proj] {
		errs["project"] = "valid project is required"
	}
	if strings.TrimSpace(f.Summary) == "" {
		errs["summary"] = "You must specify a summary of the issue."
	}
	typ := -1
	for k, t := range issueTypes {
		if f.IssueType.ID == t.ID || f.IssueType.Name != "" && strings.EqualFold(f.IssueType.Name, t.Name) {
			typ = k
		}
	}
	if typ < 0 {
		errs["issuetype"] = "Specify a valid issue type"
	}
	var desc any
	if len(f.Description) > 0 && string(f.Description) != "null" {
		var doc map[string]any
		if json.Unmarshal(f.Description, &doc) != nil || doc["type"] != "doc" {
			errs["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
		}
		desc = doc
	}
	if len(errs) > 0 {
		fieldErrors(w, http.StatusBadRequest, errs)
		return
	}
	reporter := p.user
	if reporter < 0 {
		reporter = 0 // app calls report as the site admin in the simulator
	}
	ref := s.addIssue(proj, typ, reporter, f.Summary, desc, f.Labels)
	writeJSON(w, http.StatusCreated, map[string]string{"id": ref.ID, "key": ref.Key, "self": s.BaseURL() + "/rest/api/3/issue/" + ref.ID})
}
