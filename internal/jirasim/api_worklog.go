package jirasim

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Worklogs and comments of an issue, and the incremental worklog pull
// (worklog/updated + worklog/list). A caller sees them only on issues it
// may browse; anything else is "not found", as in Jira.

const (
	defaultWorklogPage = 5000
	maxWorklogPage     = 5000
	worklogUpdatedPage = 1000
	maxWorklogList     = 1000
	defaultCommentPage = 100
	maxCommentPage     = 100
)

// browsableIssue resolves the path's issue for the caller, answering 404
// itself when the issue is unknown or hidden.
func (s *Sim) browsableIssue(w http.ResponseWriter, r *http.Request, p *principal) (corpus, int, bool) {
	if !p.can(scopeRead) {
		forbidden(w)
		return corpus{}, 0, false
	}
	c := s.snapshot()
	i, ok, _ := c.lookup(r.PathValue("issueIdOrKey"))
	if !ok || !p.browse[c.project(i)] {
		jiraError(w, http.StatusNotFound, notFoundMsg)
		return corpus{}, 0, false
	}
	return c, i, true
}

// intParam reads an optional integer query parameter; a malformed one is a
// 400 naming the parameter.
func intParam(w http.ResponseWriter, r *http.Request, name string) (int64, bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		jiraError(w, http.StatusBadRequest, "The value '"+v+"' is invalid for the parameter '"+name+"'.")
		return 0, false, false
	}
	return n, true, true
}

// handleIssueWorklogs is GET /rest/api/3/issue/{issueIdOrKey}/worklog:
// by id, startAt/maxResults paging, startedAfter/startedBefore (epoch ms).
func (s *Sim) handleIssueWorklogs(w http.ResponseWriter, r *http.Request, p *principal) {
	c, i, ok := s.browsableIssue(w, r, p)
	if !ok {
		return
	}
	after, hasAfter, ok1 := intParam(w, r, "startedAfter")
	if !ok1 {
		return
	}
	before, hasBefore, ok2 := intParam(w, r, "startedBefore")
	if !ok2 {
		return
	}
	start, limit := pageParams(r.URL.Query(), defaultWorklogPage, maxWorklogPage)
	var all []worklogRec
	for _, wl := range s.worklogs(c, i) {
		ms := wl.Started.UnixMilli()
		if hasAfter && ms < after || hasBefore && ms >= before {
			continue
		}
		all = append(all, wl)
	}
	base := s.BaseURL()
	n := max(0, min(len(all)-start, limit))
	b := append(make([]byte, 0, 2048*n+128), `{"startAt":`...)
	b = strconv.AppendInt(b, int64(start), 10)
	b = append(b, `,"maxResults":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(len(all)), 10)
	b = append(b, `,"worklogs":`...)
	b = appendList(b, n, func(b []byte, k int) []byte { return s.appendWorklog(b, base, all[start+k]) })
	chargeObjects(w, n)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// handleIssueComments is GET /rest/api/3/issue/{issueIdOrKey}/comment:
// by created (orderBy created|-created|+created), startAt/maxResults.
func (s *Sim) handleIssueComments(w http.ResponseWriter, r *http.Request, p *principal) {
	c, i, ok := s.browsableIssue(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	all := s.comments(c, i)
	sort.SliceStable(all, func(a, b int) bool {
		if !all[a].Created.Equal(all[b].Created) {
			return all[a].Created.Before(all[b].Created)
		}
		return all[a].ID < all[b].ID
	})
	switch q.Get("orderBy") {
	case "", "created", "+created":
	case "-created":
		for a, b := 0, len(all)-1; a < b; a, b = a+1, b-1 {
			all[a], all[b] = all[b], all[a]
		}
	default:
		jiraError(w, http.StatusBadRequest, "Invalid orderBy value '"+q.Get("orderBy")+"'. Allowed values: created, -created, +created.")
		return
	}
	start, limit := pageParams(q, defaultCommentPage, maxCommentPage)
	base := s.BaseURL()
	n := max(0, min(len(all)-start, limit))
	b := append(make([]byte, 0, 2048*n+128), `{"comments":`...)
	b = appendList(b, n, func(b []byte, k int) []byte { return s.appendComment(b, base, all[start+k]) })
	b = append(b, `,"startAt":`...)
	b = strconv.AppendInt(b, int64(start), 10)
	b = append(b, `,"maxResults":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(len(all)), 10)
	chargeObjects(w, n)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

// handleWorklogsUpdated is GET /rest/api/3/worklog/updated?since=ms: ids
// and update times of worklogs updated after since, oldest first, 1000 a
// page, never those of the last minute. A page never ends inside a run of
// equal update times, so following nextPage (since = until, exclusive)
// loses nothing.
func (s *Sim) handleWorklogsUpdated(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	since, _, ok := intParam(w, r, "since")
	if !ok {
		return
	}
	c := s.snapshot()
	cutoff := s.now().Add(-time.Minute).UnixMilli()
	gen := s.worklogsByUpdated()
	pl := s.model.items().wlOrder
	a := sort.Search(len(gen), func(k int) bool { return gen[k].ms > since })
	b := sort.Search(len(pl), func(k int) bool { return pl[k].ms > since })
	type changed struct {
		WorklogID   int64 `json:"worklogId"`
		UpdatedTime int64 `json:"updatedTime"`
		Properties  []any `json:"properties"`
	}
	values := []changed{}
	more := false
	var last int64
	visible := func(st worklogStamp) bool {
		i, ok := s.worklogIssue(c, st.id)
		return ok && p.browse[c.project(i)]
	}
	// Merge the generated and planted lists by time.
	for a < len(gen) || b < len(pl) {
		var st worklogStamp
		if b >= len(pl) || a < len(gen) && (gen[a].ms < pl[b].ms || gen[a].ms == pl[b].ms && gen[a].id < pl[b].id) {
			st = gen[a]
			a++
		} else {
			st = pl[b]
			b++
		}
		if st.ms > cutoff {
			break
		}
		if len(values) >= worklogUpdatedPage && st.ms != last {
			more = true
			break
		}
		if !visible(st) {
			continue
		}
		values = append(values, changed{WorklogID: st.id, UpdatedTime: st.ms, Properties: []any{}})
		last = st.ms
	}
	base := s.BaseURL()
	out := map[string]any{"values": values, "self": base + "/rest/api/3/worklog/updated?since=" + strconv.FormatInt(since, 10), "lastPage": !more}
	if len(values) > 0 {
		out["since"], out["until"] = values[0].UpdatedTime, last
		if more {
			out["nextPage"] = base + "/rest/api/3/worklog/updated?since=" + strconv.FormatInt(last, 10)
		}
	} else {
		out["since"], out["until"] = since, since
	}
	chargeObjects(w, len(values))
	writeJSON(w, http.StatusOK, out)
}

// handleWorklogList is POST /rest/api/3/worklog/list {"ids": [...]}: the
// worklogs the caller may see, in the order asked; unknown ids are left
// out.
func (s *Sim) handleWorklogList(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	var req struct {
		IDs *[]int64 `json:"ids"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.IDs == nil {
		fieldErrors(w, http.StatusBadRequest, map[string]string{"ids": "ids must not be null"})
		return
	}
	if len(*req.IDs) > maxWorklogList {
		jiraError(w, http.StatusBadRequest, "The number of worklog IDs in a request must not exceed "+strconv.Itoa(maxWorklogList)+".")
		return
	}
	c := s.snapshot()
	base := s.BaseURL()
	var found []worklogRec
	seen := map[int64]bool{}
	for _, id := range *req.IDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		wl, ok := s.worklogByID(c, id)
		if !ok || !p.browse[c.project(wl.Issue)] {
			continue
		}
		found = append(found, wl)
	}
	chargeObjects(w, len(found))
	// About 2 KiB a worklog: room for all of them at once, not grown by
	// quarters through megabytes.
	b := make([]byte, 0, 2048*len(found)+2)
	writeRaw(w, http.StatusOK, appendList(b, len(found), func(b []byte, k int) []byte { return s.appendWorklog(b, base, found[k]) }))
}

// parseState reads a comma-separated state filter against allowed values.
func parseState(v string, allowed ...string) (map[string]bool, string) {
	if v == "" {
		return nil, ""
	}
	out := map[string]bool{}
	for _, st := range strings.Split(v, ",") {
		st = strings.TrimSpace(strings.ToLower(st))
		ok := false
		for _, a := range allowed {
			ok = ok || a == st
		}
		if !ok {
			return nil, st
		}
		out[st] = true
	}
	return out, ""
}
