package jirasim

import (
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type searchRequest struct {
	JQL           string   `json:"jql"`
	NextPageToken string   `json:"nextPageToken"`
	MaxResults    *int     `json:"maxResults"`
	Fields        []string `json:"fields"`
	Expand        string   `json:"expand"`
	Properties    []string `json:"properties"`
	FieldsByKeys  bool     `json:"fieldsByKeys"`
	ReconcileIDs  []int64  `json:"reconcileIssues"`
}

const (
	defaultPage = 50
	maxPage     = 100
	maxIDPage   = 5000 // when only id/key are requested
)

var errBadToken = errors.New("The provided next page token is invalid or expired.")

func (s *Sim) handleSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	var req searchRequest
	if r.Method == http.MethodPost {
		if !decodeBody(w, r, &req) {
			return
		}
	} else {
		q := r.URL.Query()
		req.JQL, req.NextPageToken, req.Fields = q.Get("jql"), q.Get("nextPageToken"), q["fields"]
		if v := q.Get("maxResults"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				jiraError(w, http.StatusBadRequest, fmt.Sprintf("The value '%s' is invalid for the parameter 'maxResults'.", v))
				return
			}
			req.MaxResults = &n
		}
	}
	sel := parseFields(req.Fields, "id")
	limit := defaultPage
	if req.MaxResults != nil && *req.MaxResults > 0 {
		limit = *req.MaxResults
	}
	if sel.idOnly() {
		limit = min(limit, maxIDPage)
	} else {
		limit = min(limit, maxPage)
	}
	c := s.snapshot()
	idx, next, err := s.searchPage(c, p, req.JQL, req.NextPageToken, limit)
	var jqlErr *JQLError
	switch {
	case errors.As(err, &jqlErr):
		jiraError(w, http.StatusBadRequest, jqlErr.Msg)
		return
	case err != nil:
		jiraError(w, http.StatusBadRequest, err.Error())
		return
	}
	base := s.BaseURL()
	b := make([]byte, 0, 64+len(idx)*24)
	b = append(b, `{"issues":[`...)
	for k, i := range idx {
		if k > 0 {
			b = append(b, ',')
		}
		b = s.appendIssue(b, base, c, i, sel)
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"nextPageToken":`...)
		b = append(b, mustJSON(next)...)
	}
	b = append(b, `,"isLast":`...)
	b = strconv.AppendBool(b, next == "")
	chargeObjects(w, len(idx))
	writeRaw(w, http.StatusOK, append(b, '}'))
}

func (s *Sim) handleApproximateCount(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	var req struct {
		JQL string `json:"jql"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	c := s.snapshot()
	cq, err := compileJQLIn(req.JQL, c, p.browse, true, s.zoneOf(p))
	if err != nil {
		jiraError(w, http.StatusBadRequest, err.Error())
		return
	}
	n := 0
	for i := cq.genLo; i < c.len(); i++ {
		if i == cq.genHi {
			i = max(i, c.d.n) // past the created range: only issues created through REST remain
			if i >= c.len() {
				break
			}
		}
		if p.browse[c.project(i)] && (cq.match == nil || cq.match(i)) {
			n++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"count": n})
}

// searchPage returns one page of matching indexes and the token for the
// next page ("" on the last). Tokens are bound to the query and caller.
func (s *Sim) searchPage(c corpus, p *principal, jql, token string, limit int) ([]int, string, error) {
	cq, err := compileJQLIn(jql, c, p.browse, true, s.zoneOf(p))
	if err != nil {
		return nil, "", err
	}
	visible := func(i int) bool { return p.browse[c.project(i)] && (cq.match == nil || cq.match(i)) }
	fp := fingerprint(jql, p)
	pos := 0
	if token != "" {
		if pos, err = decodeToken(token, fp); err != nil {
			return nil, "", err
		}
	}
	desc, natural := naturalOrder(cq.order, len(c.extra) == 0)
	if !natural {
		return s.sortedPage(c, cq, visible, fp, pos, limit)
	}
	// Natural order walks indexes directly: pos is the next index to look
	// at (counted from the end when descending). Generated issues outside
	// the query's created range are stepped over.
	n := c.len()
	at := func(k int) int {
		if desc {
			return n - 1 - k
		}
		return k
	}
	next := func(k int) int { // the first k' ≥ k not stepped over
		for k < n {
			i := at(k)
			if !cq.skipGen(c, i) {
				return k
			}
			switch {
			case !desc && i < cq.genLo:
				k = cq.genLo
			case !desc:
				k = c.d.n
			case i >= cq.genHi:
				k = n - cq.genHi
			default:
				return n
			}
		}
		return n
	}
	var out []int
	k := next(pos)
	for ; k < n && len(out) < limit; k = next(k + 1) {
		if i := at(k); visible(i) {
			out = append(out, i)
		}
	}
	for look := k; look < n; look = next(look + 1) { // is there anything after this page?
		if visible(at(look)) {
			return out, encodeToken(fp, look), nil
		}
	}
	return out, "", nil
}

// naturalOrder reports whether the sort equals index order: created
// always does, key only while every issue is generated.
func naturalOrder(order []jqlSort, onlyGenerated bool) (desc, ok bool) {
	if len(order) == 0 {
		return false, true
	}
	f := order[0]
	if f.Field == "created" || f.Field == "key" && onlyGenerated {
		return f.Desc, true
	}
	return false, false
}

func (s *Sim) sortedPage(c corpus, cq *compiledJQL, visible func(int) bool, fp uint64, pos, limit int) ([]int, string, error) {
	cacheKey := fmt.Sprintf("%x/%d", fp, c.len())
	s.mu.RLock()
	list, ok := s.sorted[cacheKey]
	s.mu.RUnlock()
	if !ok {
		for i := 0; i < c.len(); i++ {
			if visible(i) {
				list = append(list, i)
			}
		}
		sort.SliceStable(list, func(a, b int) bool { return lessBy(c, cq.order, list[a], list[b]) })
		s.mu.Lock()
		if len(s.sorted) >= 16 {
			clear(s.sorted)
		}
		s.sorted[cacheKey] = list
		s.mu.Unlock()
	}
	if pos > len(list) {
		return nil, "", errBadToken
	}
	end := min(pos+limit, len(list))
	out := append([]int(nil), list[pos:end]...)
	if end < len(list) {
		return out, encodeToken(fp, end), nil
	}
	return out, "", nil
}

func lessBy(c corpus, order []jqlSort, a, b int) bool {
	for _, o := range order {
		var cmp int
		switch o.Field {
		case "key":
			pa, pb := c.d.projects[c.project(a)].Key, c.d.projects[c.project(b)].Key
			cmp = strings.Compare(pa, pb)
			if cmp == 0 {
				cmp = c.keyNum(a) - c.keyNum(b)
			}
		case "created":
			cmp = c.created(a).Compare(c.created(b))
		case "updated":
			cmp = c.updated(a).Compare(c.updated(b))
		}
		if o.Desc {
			cmp = -cmp
		}
		if cmp != 0 {
			return cmp < 0
		}
	}
	return a < b
}

func fingerprint(jql string, p *principal) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%d", jql, p.addonKey, p.user)
	return h.Sum64()
}

func encodeToken(fp uint64, pos int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("v1:%x:%d", fp, pos)))
}

func decodeToken(tok string, fp uint64) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, errBadToken
	}
	parts := strings.Split(string(raw), ":")
	if len(parts) != 3 || parts[0] != "v1" || parts[1] != strconv.FormatUint(fp, 16) {
		return 0, errBadToken
	}
	pos, err := strconv.Atoi(parts[2])
	if err != nil || pos < 0 {
		return 0, errBadToken
	}
	return pos, nil
}

// zoneOf is the time zone JQL dates are read in for a caller: the user's
// own, as in Jira; the app's calls and users without one read UTC.
func (s *Sim) zoneOf(p *principal) *time.Location {
	if p.user >= 0 && p.user < len(s.data.users) {
		name := s.data.users[p.user].TimeZone
		if loc, ok := zoneCache.Load(name); ok {
			return loc.(*time.Location)
		}
		if loc, err := time.LoadLocation(name); err == nil {
			zoneCache.Store(name, loc)
			return loc
		}
	}
	return time.UTC
}

// zoneCache keeps loaded zones: loading one reads the zone database.
var zoneCache sync.Map

func (p *principal) can(level int) bool { return p.kind == "user" || p.scope >= level }

func forbidden(w http.ResponseWriter) {
	jiraError(w, http.StatusForbidden, "The app is not allowed to perform this operation: its scopes are insufficient.")
}
