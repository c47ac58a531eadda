package jira

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// The calls behind the BI tables beyond Issues and Changelog (worklogs,
// comments, projects, versions, components, users, boards and sprints),
// in the shapes of Jira Cloud's platform and Agile OpenAPI specs. Every
// call runs as whoever the client acts as, so Jira leaves out what that
// user may not see. Email addresses are never decoded.

// Person is a user as the tables name them: account id and display name.
type Person struct {
	AccountID   string `json:"accountId"`
	DisplayName string `json:"displayName"`
}

// Worklog is one entry of an issue's work log (Worklog in the spec).
type Worklog struct {
	ID               string          `json:"id"`
	IssueID          string          `json:"issueId"`
	Author           *Person         `json:"author"`
	Comment          json.RawMessage `json:"comment"` // ADF
	Created          string          `json:"created"`
	Updated          string          `json:"updated"`
	Started          string          `json:"started"`
	TimeSpentSeconds int64           `json:"timeSpentSeconds"`
}

// WorklogPage is a page of an issue's worklogs (PageOfWorklogs), also the
// shape of the issue field "worklog".
type WorklogPage struct {
	StartAt    int       `json:"startAt"`
	MaxResults int       `json:"maxResults"`
	Total      int       `json:"total"`
	Worklogs   []Worklog `json:"worklogs"`
}

// MaxWorklogPage is the most worklogs Jira returns per page.
const MaxWorklogPage = 5000

// IssueWorklogs reads one page of an issue's worklogs from startAt.
func (c *Client) IssueWorklogs(ctx context.Context, issueID string, startAt, maxResults int) (WorklogPage, error) {
	var out WorklogPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}}
	const ep = "GET /rest/api/3/issue/{issueIdOrKey}/worklog"
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/api/3/issue/"+url.PathEscape(issueID)+"/worklog", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, ep, len(out.Worklogs))
	return out, nil
}

// Comment is one comment of an issue (Comment in the spec).
type Comment struct {
	ID      string          `json:"id"`
	Author  *Person         `json:"author"`
	Body    json.RawMessage `json:"body"` // ADF
	Created string          `json:"created"`
	Updated string          `json:"updated"`
}

// CommentPage is a page of an issue's comments (PageOfComments), also the
// shape of the issue field "comment".
type CommentPage struct {
	StartAt    int       `json:"startAt"`
	MaxResults int       `json:"maxResults"`
	Total      int       `json:"total"`
	Comments   []Comment `json:"comments"`
}

// MaxCommentPage is the most comments Jira returns per page.
const MaxCommentPage = 100

// IssueComments reads one page of an issue's comments from startAt, oldest
// first.
func (c *Client) IssueComments(ctx context.Context, issueID string, startAt, maxResults int) (CommentPage, error) {
	var out CommentPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}, "orderBy": {"created"}}
	const ep = "GET /rest/api/3/issue/{issueIdOrKey}/comment"
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/api/3/issue/"+url.PathEscape(issueID)+"/comment", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, ep, len(out.Comments))
	return out, nil
}

// ProjectInfo is a project as the Projects table shows it.
type ProjectInfo struct {
	ID              string  `json:"id"`
	Key             string  `json:"key"`
	Name            string  `json:"name"`
	ProjectTypeKey  string  `json:"projectTypeKey"`
	Lead            *Person `json:"lead"`
	ProjectCategory *struct {
		Name string `json:"name"`
	} `json:"projectCategory"`
}

// ProjectPage is one page of project/search (PageBeanProject).
type ProjectPage struct {
	StartAt int           `json:"startAt"`
	Total   int           `json:"total"`
	IsLast  bool          `json:"isLast"`
	Values  []ProjectInfo `json:"values"`
}

// Projects reads one page of the projects the user may browse, with their
// leads.
func (c *Client) Projects(ctx context.Context, startAt, maxResults int) (ProjectPage, error) {
	var out ProjectPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}, "expand": {"lead"}, "orderBy": {"key"}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/api/3/project/search", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, "GET /rest/api/3/project/search", len(out.Values))
	return out, nil
}

// Version is a project version (release).
type Version struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	ProjectID   int64  `json:"projectId"`
	Archived    bool   `json:"archived"`
	Released    bool   `json:"released"`
	StartDate   string `json:"startDate"`
	ReleaseDate string `json:"releaseDate"`
}

// VersionPage is one page of a project's versions (PageBeanVersion).
type VersionPage struct {
	StartAt int       `json:"startAt"`
	Total   int       `json:"total"`
	IsLast  bool      `json:"isLast"`
	Values  []Version `json:"values"`
}

// ProjectVersions reads one page of a project's versions.
func (c *Client) ProjectVersions(ctx context.Context, projectID string, startAt, maxResults int) (VersionPage, error) {
	var out VersionPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}, "orderBy": {"sequence"}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/api/3/project/"+url.PathEscape(projectID)+"/version", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, "GET /rest/api/3/project/{projectIdOrKey}/version", len(out.Values))
	return out, nil
}

// Component is a project component.
type Component struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Lead        *Person `json:"lead"`
	ProjectID   int64   `json:"projectId"`
}

// ProjectComponents lists a project's components (one unpaged list, as
// Jira answers it).
func (c *Client) ProjectComponents(ctx context.Context, projectID string) ([]Component, error) {
	var out []Component
	if err := c.do(ctx, http.MethodGet, "/rest/api/3/project/"+url.PathEscape(projectID)+"/components", nil, nil, &out); err != nil {
		return nil, err
	}
	c.chargeObjects(ctx, "GET /rest/api/3/project/{projectIdOrKey}/components", len(out))
	return out, nil
}

// Account is a user as the Users table shows it: never an email address
// (the field is not even decoded).
type Account struct {
	AccountID   string `json:"accountId"`
	AccountType string `json:"accountType"`
	DisplayName string `json:"displayName"`
	Active      bool   `json:"active"`
}

// UsersPage reads one page of users/search: every user, active or not, a
// plain JSON array. A short page is the last.
func (c *Client) UsersPage(ctx context.Context, startAt, maxResults int) ([]Account, error) {
	var out []Account
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/api/3/users/search", q, nil, &out); err != nil {
		return nil, err
	}
	c.chargeObjects(ctx, "GET /rest/api/3/users/search", identityPoints*len(out))
	return out, nil
}

// Board is a Jira Software board.
type Board struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Location *struct {
		ProjectID int64 `json:"projectId"`
	} `json:"location"`
}

// BoardPage is one page of the Agile API's board list.
type BoardPage struct {
	StartAt int     `json:"startAt"`
	Total   int     `json:"total"`
	IsLast  bool    `json:"isLast"`
	Values  []Board `json:"values"`
}

// Boards reads one page of the boards the user may see.
func (c *Client) Boards(ctx context.Context, startAt, maxResults int) (BoardPage, error) {
	var out BoardPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/agile/1.0/board", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, "GET /rest/agile/1.0/board", len(out.Values))
	return out, nil
}

// Sprint is a sprint of a board.
type Sprint struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	State         string `json:"state"`
	StartDate     string `json:"startDate"`
	EndDate       string `json:"endDate"`
	CompleteDate  string `json:"completeDate"`
	OriginBoardID int64  `json:"originBoardId"`
	Goal          string `json:"goal"`
}

// SprintPage is one page of a board's sprints.
type SprintPage struct {
	StartAt int      `json:"startAt"`
	IsLast  bool     `json:"isLast"`
	Values  []Sprint `json:"values"`
}

// BoardSprints reads one page of a board's sprints.
func (c *Client) BoardSprints(ctx context.Context, boardID int64, startAt, maxResults int) (SprintPage, error) {
	var out SprintPage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/agile/1.0/board/"+strconv.FormatInt(boardID, 10)+"/sprint", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, "GET /rest/agile/1.0/board/{boardId}/sprint", len(out.Values))
	return out, nil
}

// SprintIssuePage is one page of a sprint's issues (ids and keys only).
type SprintIssuePage struct {
	StartAt    int `json:"startAt"`
	MaxResults int `json:"maxResults"`
	Total      int `json:"total"`
	Issues     []struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"issues"`
}

// SprintIssues reads one page of the issues of a sprint the user may see.
func (c *Client) SprintIssues(ctx context.Context, sprintID int64, startAt, maxResults int) (SprintIssuePage, error) {
	var out SprintIssuePage
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}, "fields": {"id"}}
	if err := c.doExpect(ctx, maxResults, http.MethodGet, "/rest/agile/1.0/sprint/"+strconv.FormatInt(sprintID, 10)+"/issue", q, nil, &out); err != nil {
		return out, err
	}
	c.chargeObjects(ctx, "GET /rest/agile/1.0/sprint/{sprintId}/issue", len(out.Issues))
	return out, nil
}
