package jira

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"ferry/internal/jsonscan"
)

// MaxIDPage is the most ids Jira returns per search/jql page when only ids
// are requested; MaxBulkFetch the most issues per issue/bulkfetch call, and
// MaxPage the most per search/jql page with fields.
const (
	MaxIDPage    = 5000
	MaxBulkFetch = 100
	MaxPage      = 100
)

// identityPoints is what Jira's points model charges per user or group read
// (docs/jira-rate-limits.md); other objects cost 1.
const identityPoints = 2

const searchEndpoint = "POST /rest/api/3/search/jql"

// IDPage is one page of issue ids in the order the JQL asks for.
type IDPage struct {
	IDs           []string
	NextPageToken string
	IsLast        bool
}

// SearchIDs enumerates issue ids for jql, one page after pageToken.
func (c *Client) SearchIDs(ctx context.Context, jql, pageToken string, maxResults int) (IDPage, error) {
	body := map[string]any{"jql": jql, "fields": []string{"id"}, "maxResults": maxResults}
	if pageToken != "" {
		body["nextPageToken"] = pageToken
	}
	var out struct {
		Issues []struct {
			ID string `json:"id"`
		} `json:"issues"`
		NextPageToken string `json:"nextPageToken"`
		IsLast        *bool  `json:"isLast"`
	}
	if err := c.doExpect(ctx, maxResults, http.MethodPost, "/rest/api/3/search/jql", nil, body, &out); err != nil {
		return IDPage{}, err
	}
	c.chargeObjects(ctx, searchEndpoint, len(out.Issues))
	p := IDPage{NextPageToken: out.NextPageToken, IDs: make([]string, len(out.Issues))}
	for i, is := range out.Issues {
		p.IDs[i] = is.ID
	}
	p.IsLast = out.NextPageToken == "" || (out.IsLast != nil && *out.IsLast)
	return p, nil
}

// Page is one page of search/jql with fields: issues in the JQL's order.
type Page struct {
	Issues        []Issue
	NextPageToken string
	IsLast        bool
}

// Search reads one page of issues with the given fields (at most MaxPage)
// after pageToken: the cheapest way to read issues in Jira's points model,
// one point per issue plus one per page.
func (c *Client) Search(ctx context.Context, jql string, fields []string, pageToken string, maxResults int) (Page, error) {
	req := map[string]any{"jql": jql, "fields": fields, "maxResults": min(max(maxResults, 1), MaxPage), "fieldsByKeys": false}
	if pageToken != "" {
		req["nextPageToken"] = pageToken
	}
	var body []byte
	if err := c.doExpect(ctx, req["maxResults"].(int), http.MethodPost, "/rest/api/3/search/jql", nil, req, &body); err != nil {
		return Page{}, err
	}
	p, err := ReadPage(body)
	if err != nil {
		return Page{}, err
	}
	c.chargeObjects(ctx, searchEndpoint, len(p.Issues))
	return p, nil
}

// ReadPage reads a search/jql answer: with jsonscan, the field values are
// slices of body, not copies; encoding/json says what is wrong with an
// answer the scanner cannot read.
func ReadPage(body []byte) (Page, error) {
	var p Page
	var list []byte
	var isLast *bool
	ok := jsonscan.Object(body, func(k, v []byte) {
		switch string(k) {
		case "issues":
			list = v
		case "nextPageToken":
			p.NextPageToken, _ = jsonscan.String(v)
		case "isLast":
			b := string(v) == "true"
			isLast = &b
		}
	})
	if ok && list != nil {
		p.Issues, ok = scanIssueList(list)
	}
	if !ok {
		var out struct {
			Issues        []Issue `json:"issues"`
			NextPageToken string  `json:"nextPageToken"`
			IsLast        *bool   `json:"isLast"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return Page{}, fmt.Errorf("jira: search: malformed answer: %w", err)
		}
		p.Issues, p.NextPageToken, isLast = out.Issues, out.NextPageToken, out.IsLast
	}
	p.IsLast = p.NextPageToken == "" || (isLast != nil && *isLast)
	return p, nil
}

// Issue is one hydrated issue; Fields stay raw JSON so that values pass
// through to the client without being reinterpreted or kept.
type Issue struct {
	ID     string                     `json:"id"`
	Key    string                     `json:"key"`
	Fields map[string]json.RawMessage `json:"fields"`
}

// BulkFetch hydrates up to MaxBulkFetch issues. Issues the caller cannot see
// are silently missing from the answer, as in Jira; the result keeps the
// order of ids.
func (c *Client) BulkFetch(ctx context.Context, ids []string, fields []string) ([]Issue, error) {
	var body []byte
	req := map[string]any{"issueIdsOrKeys": ids, "fields": fields, "fieldsByKeys": false}
	if err := c.doExpect(ctx, len(ids), http.MethodPost, "/rest/api/3/issue/bulkfetch", nil, req, &body); err != nil {
		return nil, err
	}
	issues, ok := scanIssues(body)
	if !ok {
		// Not what the scanner expects: let encoding/json say what is wrong.
		var out struct {
			Issues []Issue `json:"issues"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("jira: bulkfetch: malformed answer: %w", err)
		}
		issues = out.Issues
	}
	c.chargeObjects(ctx, "POST /rest/api/3/issue/bulkfetch", len(issues))
	pos := make(map[string]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	slots := make([]*Issue, len(ids))
	for i := range issues {
		if p, ok := pos[issues[i].ID]; ok {
			slots[p] = &issues[i]
		}
	}
	ordered := make([]Issue, 0, len(issues))
	for _, s := range slots {
		if s != nil {
			ordered = append(ordered, *s)
		}
	}
	return ordered, nil
}

// scanIssues reads a bulkfetch answer with jsonscan: the field values are
// slices of the body, not copies, and nothing is validated twice. This is
// the feeds' hot path.
func scanIssues(body []byte) ([]Issue, bool) {
	var list []byte
	if !jsonscan.Object(body, func(k, v []byte) {
		if string(k) == "issues" {
			list = v
		}
	}) || list == nil {
		return nil, false
	}
	return scanIssueList(list)
}

// scanIssueList reads an array of issues.
func scanIssueList(list []byte) ([]Issue, bool) {
	var out []Issue
	// Every issue of a page has the same field names: each is made a
	// string once per page, not once per issue.
	names := map[string]string{}
	nfields := 8
	ok := jsonscan.Array(list, func(item []byte) bool {
		var is Issue
		good := jsonscan.Object(item, func(k, v []byte) {
			switch string(k) {
			case "id":
				is.ID, _ = jsonscan.String(v)
			case "key":
				is.Key, _ = jsonscan.String(v)
			case "fields":
				is.Fields = make(map[string]json.RawMessage, nfields)
				jsonscan.Object(v, func(fk, fv []byte) {
					name, ok := names[string(fk)]
					if !ok {
						name = string(fk)
						names[name] = name
					}
					is.Fields[name] = fv
				})
				nfields = max(nfields, len(is.Fields))
			}
		})
		out = append(out, is)
		return good && is.ID != ""
	})
	return out, ok
}

// ChangeItem is one field change in an issue's history.
type ChangeItem struct {
	Field      string  `json:"field"`
	FieldID    string  `json:"fieldId"`
	FieldType  string  `json:"fieldtype"`
	From       *string `json:"from"`
	FromString *string `json:"fromString"`
	To         *string `json:"to"`
	ToString   *string `json:"toString"`
}

// ChangeGroup is one history entry of an issue.
type ChangeGroup struct {
	ID      string `json:"id"`
	Created string `json:"created"`
	Author  *struct {
		AccountID   string `json:"accountId"`
		DisplayName string `json:"displayName"`
	} `json:"author"`
	Items []ChangeItem `json:"items"`
}

// IssueChangelog is the history of one issue.
type IssueChangelog struct {
	IssueID   string        `json:"issueId"`
	Histories []ChangeGroup `json:"changeHistories"`
}

// ChangelogPage is one page of changelog/bulkfetch.
type ChangelogPage struct {
	Logs          []IssueChangelog
	NextPageToken string
}

// ChangelogsOf fetches histories for up to MaxBulkFetch issues, limited to
// changes of the given field ids (all when none).
func (c *Client) ChangelogsOf(ctx context.Context, ids, fieldIDs []string, pageToken string) (ChangelogPage, error) {
	body := map[string]any{"issueIdsOrKeys": ids, "maxResults": 1000}
	if len(fieldIDs) > 0 {
		body["fieldIds"] = fieldIDs
	}
	if pageToken != "" {
		body["nextPageToken"] = pageToken
	}
	var out struct {
		IssueChangeLogs []IssueChangelog `json:"issueChangeLogs"`
		NextPageToken   string           `json:"nextPageToken"`
	}
	if err := c.doExpect(ctx, 1000, http.MethodPost, "/rest/api/3/changelog/bulkfetch", nil, body, &out); err != nil {
		return ChangelogPage{}, err
	}
	n := 0
	for _, l := range out.IssueChangeLogs {
		n += len(l.Histories)
	}
	c.chargeObjects(ctx, "POST /rest/api/3/changelog/bulkfetch", n) // each change history is an object
	return ChangelogPage{Logs: out.IssueChangeLogs, NextPageToken: out.NextPageToken}, nil
}

// ApproximateCount is Jira's estimate of how many issues jql matches (for
// progress bars, never for $count).
func (c *Client) ApproximateCount(ctx context.Context, jql string) (int, error) {
	var out struct {
		Count int `json:"count"`
	}
	err := c.do(ctx, http.MethodPost, "/rest/api/3/search/approximate-count", nil, map[string]string{"jql": jql}, &out)
	if err == nil {
		c.chargeObjects(ctx, "POST /rest/api/3/search/approximate-count", 0)
	}
	return out.Count, err
}

// CheckJQL asks Jira whether jql is valid for this principal; a *Error with
// Jira's own message comes back when it is not.
func (c *Client) CheckJQL(ctx context.Context, jql string) error {
	_, err := c.SearchIDs(ctx, jql, "", 1)
	return err
}

// Field is a Jira field as the field picker shows it.
type Field struct {
	ID          string   `json:"id"`
	Key         string   `json:"key"`
	Name        string   `json:"name"`
	Custom      bool     `json:"custom"`
	Orderable   bool     `json:"orderable"`
	ClauseNames []string `json:"clauseNames"`
	Schema      *struct {
		Type     string `json:"type"`
		Items    string `json:"items"`
		System   string `json:"system"`
		Custom   string `json:"custom"`
		CustomID int    `json:"customId"`
	} `json:"schema"`
}

// Fields lists the site's fields.
func (c *Client) Fields(ctx context.Context) ([]Field, error) {
	var out []Field
	err := c.do(ctx, http.MethodGet, "/rest/api/3/field", nil, nil, &out)
	c.chargeObjects(ctx, "GET /rest/api/3/field", len(out))
	return out, err
}

// User is what Ferry ever needs of a person: who they are and how to name
// them on screen. Email addresses are deliberately not decoded.
type User struct {
	AccountID   string `json:"accountId"`
	DisplayName string `json:"displayName"`
	Active      bool   `json:"active"`
	TimeZone    string `json:"timeZone"` // JQL reads dates in the searching user's zone
}

// Myself is the principal the client acts as.
func (c *Client) Myself(ctx context.Context) (User, error) {
	var u User
	err := c.do(ctx, http.MethodGet, "/rest/api/3/myself", nil, nil, &u)
	if err == nil {
		c.chargeObjects(ctx, "GET /rest/api/3/myself", identityPoints)
	}
	return u, err
}

// Users returns display names for accountIds, fetched at the time of use.
func (c *Client) Users(ctx context.Context, accountIDs []string) (map[string]User, error) {
	out := map[string]User{}
	for start := 0; start < len(accountIDs); start += 90 {
		end := min(start+90, len(accountIDs))
		q := url.Values{"maxResults": {strconv.Itoa(end - start)}}
		for _, id := range accountIDs[start:end] {
			q.Add("accountId", id)
		}
		var page struct {
			Values []User `json:"values"`
		}
		if err := c.do(ctx, http.MethodGet, "/rest/api/3/user/bulk", q, nil, &page); err != nil {
			return nil, err
		}
		c.chargeObjects(ctx, "GET /rest/api/3/user/bulk", identityPoints*len(page.Values))
		for _, u := range page.Values {
			out[u.AccountID] = u
		}
	}
	return out, nil
}

// UserGroups lists the names of the groups a user belongs to.
func (c *Client) UserGroups(ctx context.Context, accountID string) ([]string, error) {
	var out []struct {
		Name string `json:"name"`
	}
	if err := c.do(ctx, http.MethodGet, "/rest/api/3/user/groups", url.Values{"accountId": {accountID}}, nil, &out); err != nil {
		return nil, err
	}
	c.chargeObjects(ctx, "GET /rest/api/3/user/groups", identityPoints*len(out))
	names := make([]string, len(out))
	for i, g := range out {
		names[i] = g.Name
	}
	return names, nil
}

func propPath(addonKey, key string) string {
	return "/rest/atlassian-connect/1/addons/" + url.PathEscape(addonKey) + "/properties" + func() string {
		if key == "" {
			return ""
		}
		return "/" + url.PathEscape(key)
	}()
}

// ErrNotFound is returned for a missing app property.
var ErrNotFound = &Error{Status: http.StatusNotFound}

// GetProperty reads an app property's value into out.
func (c *Client) GetProperty(ctx context.Context, addonKey, key string, out any) error {
	var wrapper struct {
		Value json.RawMessage `json:"value"`
	}
	if err := c.do(ctx, http.MethodGet, propPath(addonKey, key), nil, nil, &wrapper); err != nil {
		return err
	}
	c.chargeObjects(ctx, "GET "+propPath(addonKey, key), 1)
	return json.Unmarshal(wrapper.Value, out)
}

// PutProperty stores value as an app property (Jira limits values to 32 KB).
func (c *Client) PutProperty(ctx context.Context, addonKey, key string, value any) error {
	return c.do(ctx, http.MethodPut, propPath(addonKey, key), nil, value, nil)
}

// DeleteProperty removes an app property.
func (c *Client) DeleteProperty(ctx context.Context, addonKey, key string) error {
	return c.do(ctx, http.MethodDelete, propPath(addonKey, key), nil, nil, nil)
}

// PropertyKeys lists the app's property keys.
func (c *Client) PropertyKeys(ctx context.Context, addonKey string) ([]string, error) {
	var out struct {
		Keys []struct {
			Key string `json:"key"`
		} `json:"keys"`
	}
	if err := c.do(ctx, http.MethodGet, propPath(addonKey, ""), nil, nil, &out); err != nil {
		return nil, err
	}
	c.chargeObjects(ctx, "GET "+propPath(addonKey, ""), len(out.Keys))
	keys := make([]string, len(out.Keys))
	for i, k := range out.Keys {
		keys[i] = k.Key
	}
	return keys, nil
}

// License is the app's license state on the site.
type License struct {
	Active bool
}

// AppLicense reads the app's own license on this site.
func (c *Client) AppLicense(ctx context.Context, addonKey string) (License, error) {
	var out struct {
		License *struct {
			Active bool `json:"active"`
		} `json:"license"`
	}
	if err := c.do(ctx, http.MethodGet, "/rest/atlassian-connect/1/addons/"+url.PathEscape(addonKey), nil, nil, &out); err != nil {
		return License{}, err
	}
	c.chargeObjects(ctx, "GET /rest/atlassian-connect/1/addons/"+url.PathEscape(addonKey), 1)
	return License{Active: out.License != nil && out.License.Active}, nil
}
