package jirasim

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Planting comments and worklogs with chosen text (canary strings) on any
// issue, through Go or the control API. Planted items are read like
// generated ones: the issue's comment and worklog endpoints and fields,
// worklog/updated, worklog/list, time tracking.

// NewComment is a comment to plant.
type NewComment struct {
	Issue   string    // id or key
	Body    string    // plain text, stored as one ADF paragraph
	Author  string    // accountId; default the site admin
	Created time.Time // default now
}

// NewWorklog is a worklog to plant.
type NewWorklog struct {
	Issue            string    // id or key
	Comment          string    // plain text, stored as ADF; "" for none
	Author           string    // accountId; default the site admin
	Started          time.Time // default an hour before now
	TimeSpentSeconds int       // default 3600
	Updated          time.Time // also created; default now
}

func (s *Sim) plantTarget(issue, author string) (int, int, error) {
	c := s.snapshot()
	i, ok, _ := c.lookup(strings.TrimSpace(issue))
	if !ok {
		return 0, 0, fmt.Errorf("jirasim: no issue %q", issue)
	}
	u := 0
	if author != "" {
		var found bool
		if u, found = s.data.byAcct[author]; !found {
			return 0, 0, fmt.Errorf("jirasim: no user %q", author)
		}
	}
	return i, u, nil
}

// plant applies f to a copy of the planted items and publishes it.
func (s *Sim) plant(f func(p *plantedItems) int64) int64 {
	m := &s.model
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.items()
	p := &plantedItems{
		worklogs: map[int][]worklogRec{}, comments: map[int][]commentRec{}, wlByID: map[int64]worklogRec{},
		wlOrder: append([]worklogStamp(nil), old.wlOrder...), next: old.next, touched: maps.Clone(old.touched),
	}
	if p.touched == nil {
		p.touched = map[int]time.Time{}
	}
	for k, v := range old.worklogs {
		p.worklogs[k] = v[:len(v):len(v)]
	}
	for k, v := range old.comments {
		p.comments[k] = v[:len(v):len(v)]
	}
	for k, v := range old.wlByID {
		p.wlByID[k] = v
	}
	if p.next == 0 {
		p.next = plantedBase
	}
	id := f(p)
	m.planted.Store(p)
	return id
}

// touch records that issue i changed at t (the latest change wins).
func (p *plantedItems) touch(i int, t time.Time) {
	if t.After(p.touched[i]) {
		p.touched[i] = t
	}
}

// AddComment plants a comment and returns its id.
func (s *Sim) AddComment(in NewComment) (string, error) {
	if strings.TrimSpace(in.Body) == "" {
		return "", errors.New("jirasim: a comment needs a body")
	}
	i, u, err := s.plantTarget(in.Issue, in.Author)
	if err != nil {
		return "", err
	}
	at := in.Created
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC().Truncate(time.Millisecond)
	id := s.plant(func(p *plantedItems) int64 {
		id := p.next
		p.next++
		p.comments[i] = append(p.comments[i], commentRec{ID: id, Issue: i, Author: u, Created: at, Updated: at, Body: adfText(in.Body)})
		p.touch(i, at)
		return id
	})
	return strconv.FormatInt(id, 10), nil
}

// AddWorklog plants a worklog and returns its id.
func (s *Sim) AddWorklog(in NewWorklog) (string, error) {
	i, u, err := s.plantTarget(in.Issue, in.Author)
	if err != nil {
		return "", err
	}
	if in.TimeSpentSeconds < 0 {
		return "", errors.New("jirasim: time spent must not be negative")
	}
	if in.TimeSpentSeconds == 0 {
		in.TimeSpentSeconds = 3600
	}
	upd := in.Updated
	if upd.IsZero() {
		upd = s.now()
	}
	upd = upd.UTC().Truncate(time.Millisecond)
	started := in.Started
	if started.IsZero() {
		started = upd.Add(-time.Hour)
	}
	w := worklogRec{Issue: i, Author: u, Started: started.UTC().Truncate(time.Second), Created: upd, Updated: upd, Seconds: in.TimeSpentSeconds}
	if in.Comment != "" {
		w.Comment = adfText(in.Comment)
	}
	return strconv.FormatInt(s.addPlantedWorklog(w), 10), nil
}

// addPlantedWorklog stores w under a new id, in update-time order.
func (s *Sim) addPlantedWorklog(w worklogRec) int64 {
	return s.plant(func(p *plantedItems) int64 {
		w.ID = p.next
		p.next++
		p.worklogs[w.Issue] = append(p.worklogs[w.Issue], w)
		p.wlByID[w.ID] = w
		p.touch(w.Issue, w.Updated)
		st := worklogStamp{ms: w.Updated.UnixMilli(), id: w.ID}
		k := sort.Search(len(p.wlOrder), func(k int) bool {
			return p.wlOrder[k].ms > st.ms || p.wlOrder[k].ms == st.ms && p.wlOrder[k].id > st.id
		})
		p.wlOrder = append(p.wlOrder, worklogStamp{})
		copy(p.wlOrder[k+1:], p.wlOrder[k:])
		p.wlOrder[k] = st
		return w.ID
	})
}

func (s *Sim) modelControlRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /_sim/comments", s.ctlAddComment)
	m.HandleFunc("POST /_sim/worklogs", s.ctlAddWorklog)
}

// ctlTime reads an optional RFC 3339 time field.
func ctlTime(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: not an RFC 3339 time: %q", field, v)
	}
	return t, nil
}

// ctlAddComment: {"issue", "body", "author", "created"} → 201 {"id"}.
func (s *Sim) ctlAddComment(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Issue   string `json:"issue"`
		Body    string `json:"body"`
		Author  string `json:"author"`
		Created string `json:"created"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	at, err := ctlTime(req.Created, "created")
	if err != nil {
		ctlFail(w, err)
		return
	}
	id, err := s.AddComment(NewComment{Issue: req.Issue, Body: req.Body, Author: req.Author, Created: at})
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// ctlAddWorklog: {"issue", "comment", "author", "started", "updated",
// "time_spent_seconds"} → 201 {"id"}.
func (s *Sim) ctlAddWorklog(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Issue   string `json:"issue"`
		Comment string `json:"comment"`
		Author  string `json:"author"`
		Started string `json:"started"`
		Updated string `json:"updated"`
		Seconds int    `json:"time_spent_seconds"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	started, err := ctlTime(req.Started, "started")
	if err != nil {
		ctlFail(w, err)
		return
	}
	upd, err := ctlTime(req.Updated, "updated")
	if err != nil {
		ctlFail(w, err)
		return
	}
	id, err := s.AddWorklog(NewWorklog{Issue: req.Issue, Comment: req.Comment, Author: req.Author, Started: started, Updated: upd, TimeSpentSeconds: req.Seconds})
	if err != nil {
		ctlFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}
