package jirasim

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

func (s *Sim) handleFields(w http.ResponseWriter, r *http.Request, p *principal) {
	type schema struct {
		Type     string `json:"type"`
		Items    string `json:"items,omitempty"`
		System   string `json:"system,omitempty"`
		Custom   string `json:"custom,omitempty"`
		CustomID int    `json:"customId,omitempty"`
	}
	type field struct {
		ID          string   `json:"id"`
		Key         string   `json:"key"`
		Name        string   `json:"name"`
		Custom      bool     `json:"custom"`
		Orderable   bool     `json:"orderable"`
		Navigable   bool     `json:"navigable"`
		Searchable  bool     `json:"searchable"`
		ClauseNames []string `json:"clauseNames"`
		Schema      *schema  `json:"schema,omitempty"`
	}
	out := []field{{ID: "issuekey", Key: "issuekey", Name: "Key", Navigable: true, ClauseNames: []string{"id", "issue", "issuekey", "key"}}}
	for _, d := range fieldDefs {
		out = append(out, field{
			ID: d.ID, Key: d.ID, Name: d.Name, Custom: d.Custom, Orderable: d.Orderable, Navigable: true, Searchable: true,
			ClauseNames: d.Clauses,
			Schema:      &schema{Type: d.Type, Items: d.Items, System: d.System, Custom: d.CustomType, CustomID: d.CustomID},
		})
	}
	chargeObjects(w, len(out))
	writeJSON(w, http.StatusOK, out)
}

// pageParams reads startAt/maxResults with Jira's defaults and bounds.
func pageParams(q url.Values, def, most int) (start, limit int) {
	start, _ = strconv.Atoi(q.Get("startAt"))
	limit, err := strconv.Atoi(q.Get("maxResults"))
	if err != nil || limit <= 0 {
		limit = def
	}
	return max(start, 0), min(limit, most)
}

func (s *Sim) handleProjectSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	start, limit := pageParams(q, 50, 100)
	base := s.BaseURL()
	var keys map[string]bool
	if ks := q["keys"]; len(ks) > 0 {
		keys = map[string]bool{}
		for _, k := range ks {
			for _, k := range strings.Split(k, ",") {
				keys[strings.ToUpper(strings.TrimSpace(k))] = true
			}
		}
	}
	var ids map[string]bool
	if vs := q["id"]; len(vs) > 0 {
		ids = map[string]bool{}
		for _, v := range vs {
			for _, v := range strings.Split(v, ",") {
				ids[strings.TrimSpace(v)] = true
			}
		}
	}
	query := strings.ToLower(q.Get("query"))
	var all []map[string]any
	for pi, pr := range s.data.projects {
		if !p.browse[pi] || keys != nil && !keys[pr.Key] || ids != nil && !ids[strconv.Itoa(pr.ID)] {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(pr.Key), query) && !strings.Contains(strings.ToLower(pr.Name), query) {
			continue
		}
		j := s.projectRef(base, pi)
		j["expand"] = "description,lead,issueTypes,url,projectKeys,permissions,insight"
		j["style"] = "classic"
		j["isPrivate"] = false
		j["properties"] = map[string]any{}
		s.projectExtras(base, pi, j, q.Get("expand"))
		all = append(all, j)
	}
	end := min(start+limit, len(all))
	page := []map[string]any{}
	if start < len(all) {
		page = all[start:end]
	}
	out := map[string]any{
		"self": base + r.URL.RequestURI(), "maxResults": limit, "startAt": start, "total": len(all),
		"isLast": end >= len(all), "values": page,
	}
	chargeObjects(w, len(page))
	if end < len(all) {
		out["nextPage"] = base + "/rest/api/3/project/search?startAt=" + strconv.Itoa(end) + "&maxResults=" + strconv.Itoa(limit)
	}
	writeJSON(w, http.StatusOK, out)
}

// appUser is the account an app's own JWT calls run as.
func (s *Sim) appUser(base, addonKey string) *userJSON {
	id := "557058:" + addonKey
	return &userJSON{
		Self: base + "/rest/api/3/user?accountId=" + url.QueryEscape(id), AccountID: id, AccountType: "app",
		AvatarURLs: avatarURLs("APP-0"), DisplayName: addonKey, Active: true,
	}
}

func (s *Sim) handleMyself(w http.ResponseWriter, r *http.Request, p *principal) {
	base := s.BaseURL()
	if p.user < 0 {
		writeJSON(w, http.StatusOK, s.appUser(base, p.addonKey))
		return
	}
	u := s.user(base, p.user)
	u.Locale = "en_US"
	// You always see your own email.
	u.EmailAddress = s.data.users[p.user].Email
	if strings.Contains(r.URL.Query().Get("expand"), "groups") {
		u.Groups = s.groupList(base, p.user)
	}
	chargeObjects(w, identityObjects)
	writeJSON(w, http.StatusOK, u)
}

// handleServerInfo answers as Jira Cloud does: deploymentType is always
// Cloud (clients such as Python's jira read it to choose Cloud's APIs).
func (s *Sim) handleServerInfo(w http.ResponseWriter, r *http.Request, p *principal) {
	base := s.BaseURL()
	writeJSON(w, http.StatusOK, map[string]any{
		"baseUrl": base, "displayUrl": base, "version": "1001.0.0-SNAPSHOT", "versionNumbers": []int{1001, 0, 0},
		"deploymentType": "Cloud", "buildNumber": 100300, "buildDate": "2026-11-02T00:00:00.000+0000",
		"serverTime": s.now().UTC().Format("2006-01-02T15:04:05.000-0700"), "scmInfo": "ferry-jirasim",
		"serverTitle": "Jira", "serverTimeZone": "Etc/UTC",
	})
}

const noSuchUser = "Specified user does not exist or you do not have required permissions"

func (s *Sim) handleUser(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	id := q.Get("accountId")
	if id == "" {
		fieldErrors(w, http.StatusBadRequest, map[string]string{"accountId": "The accountId query parameter needs to be provided."})
		return
	}
	i, ok := s.data.byAcct[id]
	if !ok {
		if u, ok := s.otherAccount(s.BaseURL(), id); ok {
			chargeObjects(w, identityObjects)
			writeJSON(w, http.StatusOK, u)
			return
		}
		jiraError(w, http.StatusNotFound, noSuchUser)
		return
	}
	base := s.BaseURL()
	u := s.user(base, i)
	if strings.Contains(q.Get("expand"), "groups") {
		u.Groups = s.groupList(base, i)
	}
	chargeObjects(w, identityObjects)
	writeJSON(w, http.StatusOK, u)
}

func (s *Sim) handleUserBulk(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	ids := q["accountId"]
	if len(ids) == 0 {
		fieldErrors(w, http.StatusBadRequest, map[string]string{"accountId": "At least one accountId must be provided."})
		return
	}
	start, limit := pageParams(q, 10, 200)
	base := s.BaseURL()
	var all []*userJSON
	for _, id := range ids {
		if i, ok := s.data.byAcct[id]; ok {
			all = append(all, s.user(base, i))
		} else if u, ok := s.otherAccount(base, id); ok {
			all = append(all, u)
		}
	}
	end := min(start+limit, len(all))
	page := []*userJSON{}
	if start < len(all) {
		page = all[start:end]
	}
	chargeObjects(w, identityObjects*len(page))
	out := map[string]any{"self": base + r.URL.RequestURI(), "maxResults": limit, "startAt": start, "total": len(all), "isLast": end >= len(all), "values": page}
	writeJSON(w, http.StatusOK, out)
}

func groupID(name string) string {
	h := mix(0x6a09e667, len(name), uint64(name[0])<<8|uint64(name[len(name)-1]))
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(h), h>>16&0xffffffffffff)
}

func (s *Sim) groupList(base string, i int) *groupList {
	gl := &groupList{Items: []groupName{}}
	groups, _ := s.access(i)
	for _, g := range groups {
		gl.Items = append(gl.Items, groupName{Name: g, GroupID: groupID(g), Self: base + "/rest/api/3/group?groupId=" + groupID(g)})
	}
	gl.Size = len(gl.Items)
	return gl
}

func (s *Sim) handleUserGroups(w http.ResponseWriter, r *http.Request, p *principal) {
	i, ok := s.data.byAcct[r.URL.Query().Get("accountId")]
	if !ok {
		jiraError(w, http.StatusNotFound, noSuchUser)
		return
	}
	items := s.groupList(s.BaseURL(), i).Items
	chargeObjects(w, identityObjects*len(items))
	writeJSON(w, http.StatusOK, items)
}

// handleGroupsPicker finds groups by name; with accountId it lists only
// that user's groups.
func (s *Sim) handleGroupsPicker(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	names := s.knownGroups()
	if id := q.Get("accountId"); id != "" {
		i, ok := s.data.byAcct[id]
		if !ok {
			jiraError(w, http.StatusNotFound, noSuchUser)
			return
		}
		names, _ = s.access(i)
	}
	query := strings.ToLower(q.Get("query"))
	_, limit := pageParams(q, 20, 1000)
	type found struct {
		Name    string   `json:"name"`
		HTML    string   `json:"html"`
		GroupID string   `json:"groupId"`
		Labels  []string `json:"labels"`
	}
	groups := []found{}
	for _, n := range names {
		if strings.Contains(strings.ToLower(n), query) && len(groups) < limit {
			groups = append(groups, found{Name: n, HTML: n, GroupID: groupID(n), Labels: []string{}})
		}
	}
	chargeObjects(w, identityObjects*len(groups))
	writeJSON(w, http.StatusOK, map[string]any{
		"header": "Showing " + strconv.Itoa(len(groups)) + " of " + strconv.Itoa(len(groups)) + " matching groups",
		"total":  len(groups), "groups": groups,
	})
}
