package jirasim

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// The Jira Software Agile API: boards, their sprints and the issues of a
// sprint. A board belongs to one project; a caller sees a board, its
// sprints and their issues only when it may browse that project, and
// otherwise gets the same 404 as for a board that does not exist.

const (
	defaultAgilePage = 50
	maxAgilePage     = 50
	agileTime        = "2006-01-02T15:04:05.000Z07:00"
)

const (
	noBoard  = "Board does not exist or you do not have permission to see it."
	noSprint = "Sprint does not exist or you do not have permission to see it."
)

func (s *Sim) boardJSON(base string, b boardRec) map[string]any {
	pr := s.data.projects[b.Project]
	return map[string]any{
		"id": b.ID, "self": base + "/rest/agile/1.0/board/" + strconv.Itoa(b.ID), "name": b.Name, "type": b.Type,
		"location": map[string]any{
			"projectId": pr.ID, "projectKey": pr.Key, "projectName": pr.Name, "projectTypeKey": "software",
			"displayName": pr.Name + " (" + pr.Key + ")", "name": pr.Name + " (" + pr.Key + ")",
			"avatarURI": base + "/rest/api/2/universal_avatar/view/type/project/avatar/10400?size=small",
		},
	}
}

func sprintJSON(base string, sp sprintRec) map[string]any {
	v := map[string]any{"id": sp.ID, "self": base + "/rest/agile/1.0/sprint/" + strconv.Itoa(sp.ID), "state": sp.State, "name": sp.Name,
		"originBoardId": sp.Board}
	if sp.Goal != "" {
		v["goal"] = sp.Goal
	}
	if !sp.Start.IsZero() {
		v["startDate"], v["endDate"] = sp.Start.UTC().Format(agileTime), sp.End.UTC().Format(agileTime)
		v["createdDate"] = sp.Start.Add(-72 * 3600e9).UTC().Format(agileTime)
	}
	if !sp.Complete.IsZero() {
		v["completeDate"] = sp.Complete.UTC().Format(agileTime)
	}
	return v
}

// appendAgileIssue appends an issue as the Agile API shows it: the
// platform's fields plus Jira Software's flagged, sprint (the open one the
// issue is in) and closedSprints.
func (s *Sim) appendAgileIssue(b []byte, base string, c corpus, i int, sel fieldSel) []byte {
	start := len(b)
	b = s.appendIssue(b, base, c, i, sel)
	if !sel.anyField() || !(sel.has("sprint") || sel.has("closedSprints") || sel.has("flagged")) || !strings.HasSuffix(string(b[start:]), "}}") {
		return b
	}
	b = b[:len(b)-2]
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	var open any
	closed := []any{}
	for _, k := range s.data.sprintsOf(i) {
		sp := s.data.sprint(c.project(i), k)
		if sp.State == "closed" {
			closed = append(closed, sprintJSON(base, sp))
		} else {
			open = sprintJSON(base, sp)
		}
	}
	flagged := false
	for _, v := range c.fieldValues("customfield_10044", i) {
		for _, n := range v {
			flagged = flagged || n == "Impediment"
		}
	}
	parts := []string{}
	if sel.has("flagged") {
		parts = append(parts, `"flagged":`+strconv.FormatBool(flagged))
	}
	if sel.has("sprint") {
		parts = append(parts, `"sprint":`+string(mustJSON(open)))
	}
	if sel.has("closedSprints") {
		parts = append(parts, `"closedSprints":`+string(mustJSON(closed)))
	}
	b = append(b, strings.Join(parts, ",")...)
	return append(b, '}', '}')
}

// agilePage writes Jira Software's page shape around values.
func agilePage(w http.ResponseWriter, start, limit, total int, values []any) {
	chargeObjects(w, len(values))
	writeJSON(w, http.StatusOK, map[string]any{"maxResults": limit, "startAt": start, "total": total, "isLast": start+len(values) >= total, "values": values})
}

// pathInt reads an integer path value; a malformed one is a 400.
func pathInt(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	n, err := strconv.Atoi(r.PathValue(name))
	if err != nil {
		jiraError(w, http.StatusBadRequest, "The value '"+r.PathValue(name)+"' is invalid for the parameter '"+name+"'.")
		return 0, false
	}
	return n, true
}

// visibleBoard finds a board the caller may see.
func (s *Sim) visibleBoard(w http.ResponseWriter, r *http.Request, p *principal) (boardRec, bool) {
	if !p.can(scopeRead) {
		forbidden(w)
		return boardRec{}, false
	}
	id, ok := pathInt(w, r, "boardId")
	if !ok {
		return boardRec{}, false
	}
	for _, b := range s.data.boards() {
		if b.ID == id && p.browse[b.Project] {
			return b, true
		}
	}
	jiraError(w, http.StatusNotFound, noBoard)
	return boardRec{}, false
}

// handleBoards is GET /rest/agile/1.0/board: type (scrum,kanban), name
// (contains), projectKeyOrId filters; startAt/maxResults.
func (s *Sim) handleBoards(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	types, bad := parseState(q.Get("type"), "scrum", "kanban", "simple")
	if bad != "" {
		jiraError(w, http.StatusBadRequest, "Invalid board type '"+bad+"'. Allowed values: scrum, kanban, simple.")
		return
	}
	proj := -1
	if v := q.Get("projectKeyOrId"); v != "" {
		pi, ok := findProject(s.data, v)
		if !ok || !p.browse[pi] {
			jiraError(w, http.StatusBadRequest, "No project could be found with key or id '"+v+"'.")
			return
		}
		proj = pi
	}
	name := strings.ToLower(q.Get("name"))
	start, limit := pageParams(q, defaultAgilePage, maxAgilePage)
	base := s.BaseURL()
	var all []any
	for _, b := range s.data.boards() {
		if !p.browse[b.Project] || types != nil && !types[b.Type] || proj >= 0 && b.Project != proj ||
			name != "" && !strings.Contains(strings.ToLower(b.Name), name) {
			continue
		}
		all = append(all, s.boardJSON(base, b))
	}
	agilePage(w, start, limit, len(all), pageOf(all, start, limit))
}

func pageOf(all []any, start, limit int) []any {
	out := []any{}
	for k := start; k < len(all) && k < start+limit; k++ {
		out = append(out, all[k])
	}
	return out
}

func (s *Sim) handleBoard(w http.ResponseWriter, r *http.Request, p *principal) {
	b, ok := s.visibleBoard(w, r, p)
	if !ok {
		return
	}
	chargeObjects(w, 1)
	writeJSON(w, http.StatusOK, s.boardJSON(s.BaseURL(), b))
}

// handleBoardSprints is GET /rest/agile/1.0/board/{boardId}/sprint: the
// board's sprints, oldest first; state filters (future, active, closed).
func (s *Sim) handleBoardSprints(w http.ResponseWriter, r *http.Request, p *principal) {
	b, ok := s.visibleBoard(w, r, p)
	if !ok {
		return
	}
	if b.Type != "scrum" {
		jiraError(w, http.StatusBadRequest, "The board does not support sprints")
		return
	}
	q := r.URL.Query()
	states, bad := parseState(q.Get("state"), "future", "active", "closed")
	if bad != "" {
		jiraError(w, http.StatusBadRequest, "Invalid sprint state '"+bad+"'. Allowed values: future, active, closed.")
		return
	}
	start, limit := pageParams(q, defaultAgilePage, maxAgilePage)
	base := s.BaseURL()
	var all []any
	for k := 0; k < sprintCount; k++ {
		sp := s.data.sprint(b.Project, k)
		if states == nil || states[sp.State] {
			all = append(all, sprintJSON(base, sp))
		}
	}
	agilePage(w, start, limit, len(all), pageOf(all, start, limit))
}

// visibleSprint finds a sprint the caller may see.
func (s *Sim) visibleSprint(w http.ResponseWriter, r *http.Request, p *principal) (sprintRec, bool) {
	if !p.can(scopeRead) {
		forbidden(w)
		return sprintRec{}, false
	}
	id, ok := pathInt(w, r, "sprintId")
	if !ok {
		return sprintRec{}, false
	}
	sp, ok := s.data.sprintByID(id)
	if !ok || !p.browse[sp.Project] {
		jiraError(w, http.StatusNotFound, noSprint)
		return sprintRec{}, false
	}
	return sp, true
}

func (s *Sim) handleSprint(w http.ResponseWriter, r *http.Request, p *principal) {
	sp, ok := s.visibleSprint(w, r, p)
	if !ok {
		return
	}
	chargeObjects(w, 1)
	writeJSON(w, http.StatusOK, sprintJSON(s.BaseURL(), sp))
}

// handleSprintIssues is GET /rest/agile/1.0/sprint/{sprintId}/issue and
// /board/{boardId}/sprint/{sprintId}/issue: the sprint's issues in id
// order, narrowed by jql, with the fields asked for (default: all).
func (s *Sim) handleSprintIssues(w http.ResponseWriter, r *http.Request, p *principal) {
	s.sprintIssues(w, r, p, false)
}

// handleSprintIssuesByToken is the same list at /rest/software/1.0/…,
// paged with nextPageToken and isLast like search/jql: Jira Cloud's newer
// form of these endpoints, which jira.js 6 calls (the stored Jira Software
// document predates it).
func (s *Sim) handleSprintIssuesByToken(w http.ResponseWriter, r *http.Request, p *principal) {
	s.sprintIssues(w, r, p, true)
}

func (s *Sim) sprintIssues(w http.ResponseWriter, r *http.Request, p *principal, byToken bool) {
	if r.PathValue("boardId") != "" {
		b, ok := s.visibleBoard(w, r, p)
		if !ok {
			return
		}
		if b.Type != "scrum" {
			jiraError(w, http.StatusBadRequest, "The board does not support sprints")
			return
		}
	}
	sp, ok := s.visibleSprint(w, r, p)
	if !ok {
		return
	}
	if r.PathValue("boardId") != "" && strconv.Itoa(sp.Board) != r.PathValue("boardId") {
		jiraError(w, http.StatusNotFound, noSprint)
		return
	}
	q := r.URL.Query()
	c := s.snapshot()
	idx := s.data.sprintIssues(sp.Project, sp.K)
	if src := strings.TrimSpace(q.Get("jql")); src != "" {
		cq, err := compileJQLIn(src, c, p.browse, false, s.zoneOf(p))
		var jqlErr *JQLError
		switch {
		case errors.As(err, &jqlErr):
			jiraError(w, http.StatusBadRequest, jqlErr.Msg)
			return
		case err != nil:
			jiraError(w, http.StatusBadRequest, err.Error())
			return
		}
		if cq.match != nil {
			kept := idx[:0:0]
			for _, i := range idx {
				if cq.match(i) {
					kept = append(kept, i)
				}
			}
			idx = kept
		}
	}
	start, limit := pageParams(q, defaultAgilePage, maxAgilePage)
	sel := parseFields(q["fields"], "*navigable")
	base := s.BaseURL()
	if byToken {
		fp := fingerprint(strconv.Itoa(sp.ID)+"|"+q.Get("jql")+"|"+strings.Join(q["fields"], ","), p)
		start = 0
		if tok := q.Get("nextPageToken"); tok != "" {
			var err error
			if start, err = decodeToken(tok, fp); err != nil {
				jiraError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		b := []byte(`{"issues":[`)
		n := 0
		for k := start; k < len(idx) && k < start+limit; k++ {
			if n > 0 {
				b = append(b, ',')
			}
			b = s.appendAgileIssue(b, base, c, idx[k], sel)
			n++
		}
		b = append(b, ']')
		last := start+n >= len(idx)
		if !last {
			b = append(b, `,"nextPageToken":`...)
			b = append(b, mustJSON(encodeToken(fp, start+n))...)
		}
		b = append(b, `,"isLast":`...)
		b = strconv.AppendBool(b, last)
		chargeObjects(w, n)
		writeRaw(w, http.StatusOK, append(b, '}'))
		return
	}
	b := []byte(`{"expand":"schema,names","startAt":`)
	b = strconv.AppendInt(b, int64(start), 10)
	b = append(b, `,"maxResults":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(len(idx)), 10)
	b = append(b, `,"issues":[`...)
	n := 0
	for k := start; k < len(idx) && k < start+limit; k++ {
		if n > 0 {
			b = append(b, ',')
		}
		b = s.appendAgileIssue(b, base, c, idx[k], sel)
		n++
	}
	chargeObjects(w, n)
	writeRaw(w, http.StatusOK, append(b, ']', '}'))
}
