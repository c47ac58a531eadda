package jirasim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Adding comments and worklogs through Jira's REST API (POST
// /issue/{id}/comment, POST /issue/{id}/worklog): the same planting as the
// control API, as the calling user, with Jira's validation. Visibility
// restrictions are not modelled: a body that sets one is refused rather
// than stored as if everyone could see it.

// writableIssue resolves the path's issue for a write.
func (s *Sim) writableIssue(w http.ResponseWriter, r *http.Request, p *principal) (int, bool) {
	if !p.can(scopeWrite) {
		forbidden(w)
		return 0, false
	}
	c := s.snapshot()
	i, ok, _ := c.lookup(r.PathValue("issueIdOrKey"))
	if !ok || !p.browse[c.project(i)] {
		jiraError(w, http.StatusNotFound, notFoundMsg)
		return 0, false
	}
	return i, true
}

// adfDoc reads an ADF document; nil for absent or null.
func adfDoc(raw json.RawMessage) (map[string]any, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil || doc["type"] != "doc" {
		return nil, false
	}
	return doc, true
}

func (s *Sim) handleAddComment(w http.ResponseWriter, r *http.Request, p *principal) {
	i, ok := s.writableIssue(w, r, p)
	if !ok {
		return
	}
	var req struct {
		Body       json.RawMessage `json:"body"`
		Visibility json.RawMessage `json:"visibility"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	doc, ok := adfDoc(req.Body)
	switch {
	case !ok:
		fieldErrors(w, http.StatusBadRequest, map[string]string{"comment": "Comment body is not valid Atlassian Document Format."})
		return
	case doc == nil || len(strings.TrimSpace(adfPlain(doc))) == 0:
		fieldErrors(w, http.StatusBadRequest, map[string]string{"comment": "Comment body can not be empty!"})
		return
	case len(req.Visibility) > 0 && string(req.Visibility) != "null":
		fieldErrors(w, http.StatusBadRequest, map[string]string{"visibility": "Comment visibility is not supported by this site."})
		return
	}
	author := max(p.user, 0)
	at := s.now().UTC().Truncate(time.Millisecond)
	id := s.plant(func(pl *plantedItems) int64 {
		id := pl.next
		pl.next++
		pl.comments[i] = append(pl.comments[i], commentRec{ID: id, Issue: i, Author: author, Created: at, Updated: at, Body: doc})
		return id
	})
	cm := commentRec{ID: id, Issue: i, Author: author, Created: at, Updated: at, Body: doc}
	writeRaw(w, http.StatusCreated, s.appendComment(nil, s.BaseURL(), cm))
}

func (s *Sim) handleAddWorklog(w http.ResponseWriter, r *http.Request, p *principal) {
	i, ok := s.writableIssue(w, r, p)
	if !ok {
		return
	}
	var req struct {
		Comment          json.RawMessage `json:"comment"`
		Started          string          `json:"started"`
		TimeSpent        string          `json:"timeSpent"`
		TimeSpentSeconds *int            `json:"timeSpentSeconds"`
		Visibility       json.RawMessage `json:"visibility"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	errs := map[string]string{}
	started, err := time.Parse(jiraTime, req.Started)
	if err != nil {
		errs["started"] = "Started date is required and must look like 2021-01-17T12:34:00.000+0000."
	}
	secs := 0
	switch {
	case req.TimeSpentSeconds != nil:
		secs = *req.TimeSpentSeconds
	case req.TimeSpent != "":
		secs = parseJiraDuration(req.TimeSpent)
	}
	if secs <= 0 {
		errs["timeLogged"] = "You must indicate the time spent working."
	}
	doc, ok := adfDoc(req.Comment)
	if !ok {
		errs["comment"] = "Comment is not valid Atlassian Document Format."
	}
	if len(req.Visibility) > 0 && string(req.Visibility) != "null" {
		errs["visibility"] = "Worklog visibility is not supported by this site."
	}
	if len(errs) > 0 {
		fieldErrors(w, http.StatusBadRequest, errs)
		return
	}
	at := s.now().UTC().Truncate(time.Millisecond)
	wl := worklogRec{Issue: i, Author: max(p.user, 0), Started: started.UTC(), Created: at, Updated: at, Seconds: secs}
	if doc != nil {
		wl.Comment = doc
	}
	wl.ID = s.addPlantedWorklog(wl)
	writeRaw(w, http.StatusCreated, s.appendWorklog(nil, s.BaseURL(), wl))
}

// parseJiraDuration reads "1w 2d 3h 30m" (weeks of 5 days, days of 8 h; a
// bare number is minutes); 0 for anything else.
func parseJiraDuration(v string) int {
	total := 0
	for _, part := range strings.Fields(v) {
		unit := 60
		switch part[len(part)-1] {
		case 'w':
			unit, part = 5*8*3600, part[:len(part)-1]
		case 'd':
			unit, part = 8*3600, part[:len(part)-1]
		case 'h':
			unit, part = 3600, part[:len(part)-1]
		case 'm':
			part = part[:len(part)-1]
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return 0
		}
		total += n * unit
	}
	return total
}

// adfPlain is the text of an ADF document, for the empty-body check.
func adfPlain(v any) string {
	switch v := v.(type) {
	case map[string]any:
		t, _ := v["text"].(string)
		return t + adfPlain(v["content"])
	case []any:
		var b strings.Builder
		for _, x := range v {
			b.WriteString(adfPlain(x))
		}
		return b.String()
	}
	return ""
}
