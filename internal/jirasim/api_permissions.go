package jirasim

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Who may do what on the site: each user's groups and global permissions.
// Jira grants global permissions to groups; the simulator keeps them per
// user, so a test can give someone ADMINISTER without any administrators'
// group (or put someone in jira-administrators without it) and see which
// one an app trusts. Both can change while the site runs (SetUserAccess,
// POST /_sim/users/access).

// permissionDef is one permission key GET /rest/api/3/mypermissions knows.
type permissionDef struct {
	Key, ID, Name, Desc, Type string
}

// permissionDefs are the keys the simulator answers about: Jira's global
// permissions, and the project permissions it evaluates from browse rights.
var permissionDefs = []permissionDef{
	{"ADMINISTER", "0", "Administer Jira", "Create and administer projects, issue types, fields, workflows, and schemes for all projects. Users with this permission can perform most administration tasks, except: managing users, importing data, and editing system email settings.", "GLOBAL"},
	{"SYSTEM_ADMIN", "44", "Administer Jira", "Ability to perform all administration functions. There must be at least one group with this permission.", "GLOBAL"},
	{"USER_PICKER", "27", "Browse users and groups", "View and select users or groups from the user picker, and share issues. Users with this permission can see the names of all users and groups on your site.", "GLOBAL"},
	{"CREATE_SHARED_OBJECTS", "22", "Share dashboards and filters", "Share dashboards and filters with other users.", "GLOBAL"},
	{"MANAGE_GROUP_FILTER_SUBSCRIPTIONS", "24", "Manage group filter subscriptions", "Create and delete group filter subscriptions.", "GLOBAL"},
	{"BULK_CHANGE", "33", "Make bulk changes", "Modify collections of issues at once. For example, resolve multiple issues in one step.", "GLOBAL"},
	{"BROWSE_PROJECTS", "10", "Browse Projects", "Ability to browse projects and the issues within them.", "PROJECT"},
	{"CREATE_ISSUES", "11", "Create Issues", "Ability to create issues.", "PROJECT"},
	{"EDIT_ISSUES", "12", "Edit Issues", "Ability to edit issues.", "PROJECT"},
}

// Global permissions a generated user holds: what Jira grants the
// jira-users group by default, and everything for the site admin.
var (
	defaultGlobal = []string{"USER_PICKER", "CREATE_SHARED_OBJECTS", "BULK_CHANGE"}
	adminGlobal   = []string{"ADMINISTER", "SYSTEM_ADMIN", "USER_PICKER", "CREATE_SHARED_OBJECTS", "MANAGE_GROUP_FILTER_SUBSCRIPTIONS", "BULK_CHANGE"}
)

func findPermission(key string) (permissionDef, bool) {
	for _, p := range permissionDefs {
		if p.Key == key {
			return p, true
		}
	}
	return permissionDef{}, false
}

// userAccess is a user's groups and global permissions as changed by
// SetUserAccess; the dataset keeps the generated ones, never written again.
type userAccess struct {
	groups, global []string
}

// access returns a copy of user i's groups and global permissions.
func (s *Sim) access(i int) (groups, global []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.accessLocked(i)
}

func (s *Sim) accessLocked(i int) (groups, global []string) {
	if a, ok := s.accessNow[i]; ok {
		return slices.Clone(a.groups), slices.Clone(a.global)
	}
	return slices.Clone(s.data.users[i].groups), slices.Clone(s.data.users[i].global)
}

// knownGroups lists every group of the site: Jira's standard ones and any
// a user was put in.
func (s *Sim) knownGroups() []string {
	names := []string{"jira-administrators", "jira-software-users", "jira-users", "site-admins"}
	s.mu.RLock()
	for i := range s.data.users {
		groups, _ := s.accessLocked(i)
		for _, g := range groups {
			if !slices.Contains(names, g) {
				names = append(names, g)
			}
		}
	}
	s.mu.RUnlock()
	slices.Sort(names)
	return names
}

// ErrUnknownPermission is a global permission key the simulator does not know.
var ErrUnknownPermission = errors.New("jirasim: unknown global permission")

// SetUserAccess replaces a user's groups (when groups is not nil) and global
// permissions (when global is not nil).
func (s *Sim) SetUserAccess(accountID string, groups, global []string) error {
	i, ok := s.data.byAcct[accountID]
	if !ok {
		return errors.New("jirasim: no user " + strconv.Quote(accountID))
	}
	for _, k := range global {
		if p, ok := findPermission(k); !ok || p.Type != "GLOBAL" {
			return errors.Join(ErrUnknownPermission, errors.New(strconv.Quote(k)))
		}
	}
	for _, g := range groups {
		if strings.TrimSpace(g) == "" || g != strings.TrimSpace(g) {
			return errors.New("jirasim: a group name must not be empty or start or end with a space")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var a userAccess
	a.groups, a.global = s.accessLocked(i)
	if groups != nil {
		a.groups = slices.Compact(slices.Sorted(slices.Values(groups)))
	}
	if global != nil {
		a.global = slices.Compact(slices.Sorted(slices.Values(global)))
	}
	if s.accessNow == nil {
		s.accessNow = map[int]userAccess{}
	}
	s.accessNow[i] = a
	return nil
}

// handleMyPermissions answers GET /rest/api/3/mypermissions for the caller:
// global permissions as held, project permissions from browse rights (in
// the global context: in any project; with projectKey or projectId: in that
// project, 404 when the caller cannot see it).
func (s *Sim) handleMyPermissions(w http.ResponseWriter, r *http.Request, p *principal) {
	if !p.can(scopeRead) {
		forbidden(w)
		return
	}
	q := r.URL.Query()
	raw := strings.TrimSpace(q.Get("permissions"))
	if raw == "" {
		jiraError(w, http.StatusBadRequest, "The permissions query parameter is required: a comma-separated list of permission keys.")
		return
	}
	var keys []permissionDef
	for _, k := range strings.Split(raw, ",") {
		k = strings.TrimSpace(k)
		def, ok := findPermission(k)
		if !ok {
			jiraError(w, http.StatusBadRequest, "Invalid permission key: "+k+".")
			return
		}
		keys = append(keys, def)
	}
	project := -1
	if id := q.Get("projectId"); id != "" {
		project = s.projectByID(id)
	} else if key := q.Get("projectKey"); key != "" {
		if pi, ok := s.data.byKey[strings.ToUpper(key)]; ok {
			project = pi
		} else {
			project = -2
		}
	}
	if project == -2 || project >= 0 && !p.browse[project] {
		jiraError(w, http.StatusNotFound, "No project could be found with key or id '"+q.Get("projectKey")+q.Get("projectId")+"'.")
		return
	}
	var global []string
	if p.user >= 0 {
		_, global = s.access(p.user)
	}
	out := map[string]map[string]any{}
	for _, def := range keys {
		have := false
		switch {
		case def.Type == "GLOBAL":
			have = slices.Contains(global, def.Key)
		case project >= 0:
			have = p.browse[project]
		default:
			have = slices.Contains(p.browse, true)
		}
		out[def.Key] = map[string]any{"id": def.ID, "key": def.Key, "name": def.Name, "type": def.Type,
			"description": def.Desc, "havePermission": have}
	}
	writeJSON(w, http.StatusOK, map[string]any{"permissions": out})
}

// projectByID is the project index with that id, -2 for none.
func (s *Sim) projectByID(id string) int {
	for pi, pr := range s.data.projects {
		if strconv.Itoa(pr.ID) == id {
			return pi
		}
	}
	return -2
}

// handleUserSearch answers GET /rest/api/3/user/search: active users whose
// display name contains query or whose email address starts with it (case
// does not matter), or the one user named by accountId.
func (s *Sim) handleUserSearch(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	query, acct := strings.ToLower(strings.TrimSpace(q.Get("query"))), q.Get("accountId")
	if query == "" && acct == "" {
		jiraError(w, http.StatusBadRequest, "The query parameter 'query' or 'accountId' is required.")
		return
	}
	start, limit := pageParams(q, 50, 1000)
	base := s.BaseURL()
	var all []*userJSON
	for i, u := range s.data.users {
		if u.Closed {
			continue
		}
		if acct != "" && u.AccountID != acct {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(u.DisplayName), query) && !strings.HasPrefix(strings.ToLower(u.Email), query) {
			continue
		}
		all = append(all, s.user(base, i))
	}
	end := min(start+limit, len(all))
	page := []*userJSON{}
	if start < len(all) {
		page = all[start:end]
	}
	writeJSON(w, http.StatusOK, page)
}

// ctlUserAccess serves POST /_sim/users/access: {"account_id", "groups",
// "global_permissions"}; a list left out stays as it is.
func (s *Sim) ctlUserAccess(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AccountID string   `json:"account_id"`
		Groups    []string `json:"groups"`
		Global    []string `json:"global_permissions"`
	}
	if !ctlDecode(w, r, &req) {
		return
	}
	if err := s.SetUserAccess(req.AccountID, req.Groups, req.Global); err != nil {
		ctlFail(w, err)
		return
	}
	i := s.data.byAcct[req.AccountID]
	groups, global := s.access(i)
	writeJSON(w, http.StatusOK, map[string]any{"account_id": req.AccountID, "groups": groups, "global_permissions": global})
}
