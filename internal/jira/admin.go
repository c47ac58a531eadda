package jira

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// What site administration needs of Jira: whether a user holds a global
// permission (Jira's own answer to "is this an administrator?"), and
// finding users, groups and projects for the admin page's pickers.

// GlobalAdminister is the global permission of a Jira administrator.
const GlobalAdminister = "ADMINISTER"

// MyPermissions asks Jira which of keys the client's principal holds, in the
// global context (GET /rest/api/3/mypermissions). Call it as the user: the
// answer is about whoever the call runs as.
func (c *Client) MyPermissions(ctx context.Context, keys ...string) (map[string]bool, error) {
	var out struct {
		Permissions map[string]struct {
			HavePermission bool `json:"havePermission"`
		} `json:"permissions"`
	}
	q := url.Values{"permissions": {strings.Join(keys, ",")}}
	if err := c.do(ctx, http.MethodGet, "/rest/api/3/mypermissions", q, nil, &out); err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = out.Permissions[k].HavePermission
	}
	return have, nil
}

// SearchUsers finds active users by name (GET /rest/api/3/user/search);
// only accountId and display name are decoded, never an email address.
func (c *Client) SearchUsers(ctx context.Context, query string, limit int) ([]User, error) {
	var out []User
	q := url.Values{"query": {query}, "maxResults": {strconv.Itoa(limit)}}
	if err := c.do(ctx, http.MethodGet, "/rest/api/3/user/search", q, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// FindGroups lists group names containing query (GET /rest/api/3/groups/picker).
func (c *Client) FindGroups(ctx context.Context, query string, limit int) ([]string, error) {
	var out struct {
		Groups []struct {
			Name string `json:"name"`
		} `json:"groups"`
	}
	q := url.Values{"query": {query}, "maxResults": {strconv.Itoa(limit)}}
	if err := c.do(ctx, http.MethodGet, "/rest/api/3/groups/picker", q, nil, &out); err != nil {
		return nil, err
	}
	names := make([]string, len(out.Groups))
	for i, g := range out.Groups {
		names[i] = g.Name
	}
	return names, nil
}

// Project is a project as the admin page names it.
type Project struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

// ProjectsByKey returns the projects among keys that the principal may see.
func (c *Client) ProjectsByKey(ctx context.Context, keys []string) ([]Project, error) {
	return c.projects(ctx, "keys", keys)
}

// ProjectsByID returns the projects among ids that the principal may see.
func (c *Client) ProjectsByID(ctx context.Context, ids []string) ([]Project, error) {
	return c.projects(ctx, "id", ids)
}

// projects asks GET /rest/api/3/project/search, 50 values at a time.
func (c *Client) projects(ctx context.Context, param string, values []string) ([]Project, error) {
	var all []Project
	for start := 0; start < len(values); start += 50 {
		q := url.Values{param: values[start:min(start+50, len(values))], "maxResults": {"50"}}
		var page struct {
			Values []Project `json:"values"`
		}
		if err := c.do(ctx, http.MethodGet, "/rest/api/3/project/search", q, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Values...)
	}
	return all, nil
}
