package jirasim

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Project versions and components, project search's category and lead, and
// the list of all users. A project the caller may not browse is "not
// found", as in Jira.

var projectCategories = []struct{ ID, Name, Desc string }{
	{"10000", "Product", "Customer-facing products"},
	{"10001", "Internal", "Tools and operations"},
}

// projectExtras adds project search's category (every third project has
// none) and, when expanded, the lead and description.
func (s *Sim) projectExtras(base string, p int, j map[string]any, expand string) {
	if p%3 != 2 {
		c := projectCategories[p%2]
		j["projectCategory"] = map[string]any{"self": base + "/rest/api/3/projectCategory/" + c.ID, "id": c.ID, "name": c.Name, "description": c.Desc}
	}
	for _, e := range strings.Split(expand, ",") {
		switch strings.TrimSpace(e) {
		case "lead":
			j["lead"] = s.user(base, s.data.projects[p].Lead)
		case "description":
			j["description"] = "The " + s.data.projects[p].Name + " project."
		}
	}
}

// visibleProject resolves {projectIdOrKey} for the caller.
func (s *Sim) visibleProject(w http.ResponseWriter, r *http.Request, p *principal) (int, bool) {
	if !p.can(scopeRead) {
		forbidden(w)
		return 0, false
	}
	v := r.PathValue("projectIdOrKey")
	pi, ok := findProject(s.data, v)
	if !ok || !p.browse[pi] {
		jiraError(w, http.StatusNotFound, "No project could be found with key '"+v+"'.")
		return 0, false
	}
	return pi, true
}

func (s *Sim) versionJSON(base string, p int, v version) map[string]any {
	out := map[string]any{
		"self": base + "/rest/api/3/version/" + strconv.Itoa(v.ID), "id": strconv.Itoa(v.ID), "name": v.Name,
		"description": "Release " + v.Name + " of " + s.data.projects[p].Name,
		"archived":    v.Archived, "released": v.Released, "projectId": s.data.projects[p].ID,
	}
	if v.Date != "" {
		out["releaseDate"] = v.Date
		out["userReleaseDate"] = dateUser(v.Date)
		out["overdue"] = !v.Released && v.Date < dataEnd.Format("2006-01-02")
	}
	if v.Start != "" {
		out["startDate"] = v.Start
		out["userStartDate"] = dateUser(v.Start)
	}
	return out
}

// dateUser is Jira's user-facing date form, "24/Jun/24".
func dateUser(iso string) string {
	if len(iso) != 10 {
		return iso
	}
	months := []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	m, _ := strconv.Atoi(iso[5:7])
	if m < 1 || m > 12 {
		return iso
	}
	return iso[8:10] + "/" + months[m-1] + "/" + iso[2:4]
}

// handleProjectVersions is GET /rest/api/3/project/{projectIdOrKey}/versions:
// every version, unpaged.
func (s *Sim) handleProjectVersions(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.visibleProject(w, r, p)
	if !ok {
		return
	}
	base := s.BaseURL()
	out := []any{}
	for _, v := range s.data.projects[pi].Versions {
		out = append(out, s.versionJSON(base, pi, v))
	}
	chargeObjects(w, len(out))
	writeJSON(w, http.StatusOK, out)
}

// handleProjectVersionPage is GET /rest/api/3/project/{projectIdOrKey}/version:
// paged, with status (released, unreleased, archived), query and orderBy.
func (s *Sim) handleProjectVersionPage(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.visibleProject(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	status, bad := parseState(q.Get("status"), "released", "unreleased", "archived")
	if bad != "" {
		jiraError(w, http.StatusBadRequest, "Invalid status '"+bad+"'. Allowed values: released, unreleased, archived.")
		return
	}
	query := strings.ToLower(q.Get("query"))
	vs := append([]version(nil), s.data.projects[pi].Versions...)
	order := q.Get("orderBy")
	desc := strings.HasPrefix(order, "-")
	switch strings.TrimLeft(order, "+-") {
	case "", "sequence":
	case "name":
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].Name < vs[b].Name })
	case "releaseDate":
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].Date < vs[b].Date })
	case "startDate":
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].Start < vs[b].Start })
	case "description":
		sort.SliceStable(vs, func(a, b int) bool { return vs[a].Name < vs[b].Name }) // descriptions follow names
	default:
		jiraError(w, http.StatusBadRequest, "Invalid orderBy value '"+order+"'.")
		return
	}
	if desc {
		for a, b := 0, len(vs)-1; a < b; a, b = a+1, b-1 {
			vs[a], vs[b] = vs[b], vs[a]
		}
	}
	base := s.BaseURL()
	var all []any
	for _, v := range vs {
		// An archived version has that status only.
		st := "unreleased"
		switch {
		case v.Archived:
			st = "archived"
		case v.Released:
			st = "released"
		}
		if status != nil && !status[st] {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(v.Name), query) {
			continue
		}
		all = append(all, s.versionJSON(base, pi, v))
	}
	start, limit := pageParams(q, 50, 50)
	page := pageOf(all, start, limit)
	self := base + r.URL.RequestURI()
	out := map[string]any{"self": self, "maxResults": limit, "startAt": start, "total": len(all), "isLast": start+len(page) >= len(all), "values": page}
	if start+len(page) < len(all) {
		out["nextPage"] = base + "/rest/api/3/project/" + s.data.projects[pi].Key + "/version?startAt=" + strconv.Itoa(start+len(page)) + "&maxResults=" + strconv.Itoa(limit)
	}
	chargeObjects(w, len(page))
	writeJSON(w, http.StatusOK, out)
}

// handleProjectComponents is GET /rest/api/3/project/{projectIdOrKey}/components.
func (s *Sim) handleProjectComponents(w http.ResponseWriter, r *http.Request, p *principal) {
	pi, ok := s.visibleProject(w, r, p)
	if !ok {
		return
	}
	if src := r.URL.Query().Get("componentSource"); src != "" && src != "jira" && src != "compass" && src != "auto" {
		jiraError(w, http.StatusBadRequest, "Invalid componentSource '"+src+"'. Allowed values: jira, compass, auto.")
		return
	}
	base := s.BaseURL()
	pr := s.data.projects[pi]
	out := []any{}
	for _, c := range s.data.components(pi) {
		v := componentRef(base, c)
		v["project"], v["projectId"] = pr.Key, pr.ID
		v["isAssigneeTypeValid"] = false
		if c.Lead >= 0 {
			v["lead"] = s.user(base, c.Lead)
			v["assigneeType"], v["realAssigneeType"] = "COMPONENT_LEAD", "COMPONENT_LEAD"
			v["assignee"], v["realAssignee"] = s.user(base, c.Lead), s.user(base, c.Lead)
		} else {
			v["assigneeType"], v["realAssigneeType"] = "PROJECT_DEFAULT", "PROJECT_DEFAULT"
		}
		out = append(out, v)
	}
	chargeObjects(w, len(out))
	writeJSON(w, http.StatusOK, out)
}

// otherAccounts are accounts that are not people who sign in: Jira's
// automation bot (an app account) and a JSM customer. They own no work in
// the data set but are listed like every account.
var otherAccounts = []struct{ ID, Name, Type string }{
	{"557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "Automation for Jira", "app"},
	{"qm:5c7e1a52-9d1b-4a55-9f3e-0e8c2f4b7a10:6b1f0c2e-3d4a-4b5c-8e9f-a0b1c2d3e4f5", "Casey Customer", "customer"},
}

func (s *Sim) otherAccount(base, id string) (*userJSON, bool) {
	for _, a := range otherAccounts {
		if a.ID == id {
			return &userJSON{Self: base + "/rest/api/3/user?accountId=" + url.QueryEscape(a.ID), AccountID: a.ID, AccountType: a.Type,
				AvatarURLs: avatarURLs(initials(a.Name)), DisplayName: a.Name, Active: true}, true
		}
	}
	return nil, false
}

// handleUsersSearch is GET /rest/api/3/users/search: every account, active
// or not, people first, then the app and customer accounts, with profile
// visibility applied (an email only where the profile shows it).
func (s *Sim) handleUsersSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	start, limit := pageParams(r.URL.Query(), 50, 1000)
	base := s.BaseURL()
	out := []*userJSON{}
	n := len(s.data.users)
	for i := start; i < n+len(otherAccounts) && i < start+limit; i++ {
		if i < n {
			out = append(out, s.user(base, i))
		} else {
			u, _ := s.otherAccount(base, otherAccounts[i-n].ID)
			out = append(out, u)
		}
	}
	chargeObjects(w, identityObjects*len(out))
	writeJSON(w, http.StatusOK, out)
}

// modelRoutes lists the data model's endpoints (model*.go, api_worklog.go,
// api_agile.go, api_project.go).
func (s *Sim) modelRoutes(rest func(string, func(http.ResponseWriter, *http.Request, *principal))) {
	rest("GET /rest/api/3/issue/{issueIdOrKey}/worklog", s.handleIssueWorklogs)
	rest("GET /rest/api/3/issue/{issueIdOrKey}/comment", s.handleIssueComments)
	rest("POST /rest/api/3/issue/{issueIdOrKey}/comment", s.handleAddComment)
	rest("POST /rest/api/3/issue/{issueIdOrKey}/worklog", s.handleAddWorklog)
	rest("GET /rest/api/3/worklog/updated", s.handleWorklogsUpdated)
	rest("POST /rest/api/3/worklog/list", s.handleWorklogList)
	rest("GET /rest/api/3/project/{projectIdOrKey}/versions", s.handleProjectVersions)
	rest("GET /rest/api/3/project/{projectIdOrKey}/version", s.handleProjectVersionPage)
	rest("GET /rest/api/3/project/{projectIdOrKey}/components", s.handleProjectComponents)
	rest("GET /rest/api/3/users/search", s.handleUsersSearch)
	rest("GET /rest/agile/1.0/board", s.handleBoards)
	rest("GET /rest/agile/1.0/board/{boardId}", s.handleBoard)
	rest("GET /rest/agile/1.0/board/{boardId}/sprint", s.handleBoardSprints)
	rest("GET /rest/agile/1.0/board/{boardId}/sprint/{sprintId}/issue", s.handleSprintIssues)
	rest("GET /rest/agile/1.0/sprint/{sprintId}", s.handleSprint)
	rest("GET /rest/agile/1.0/sprint/{sprintId}/issue", s.handleSprintIssues)
	rest("GET /rest/software/1.0/sprint/{sprintId}/issue", s.handleSprintIssuesByToken)
	rest("GET /rest/software/1.0/board/{boardId}/sprint/{sprintId}/issue", s.handleSprintIssuesByToken)
}
