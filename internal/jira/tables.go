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
	return getCharged(ctx, c, "GET /rest/api/3/issue/{issueIdOrKey}/worklog", "/rest/api/3/issue/"+url.PathEscape(issueID)+"/worklog",
		pageQuery(startAt, maxResults), maxResults, func(p *WorklogPage) int { return len(p.Worklogs) })
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
	return getCharged(ctx, c, "GET /rest/api/3/issue/{issueIdOrKey}/comment", "/rest/api/3/issue/"+url.PathEscape(issueID)+"/comment",
		pageQuery(startAt, maxResults, "orderBy", "created"), maxResults, func(p *CommentPage) int { return len(p.Comments) })
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
	return getCharged(ctx, c, "GET /rest/api/3/project/search", "/rest/api/3/project/search",
		pageQuery(startAt, maxResults, "expand", "lead", "orderBy", "key"), maxResults, func(p *ProjectPage) int { return len(p.Values) })
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
	return getCharged(ctx, c, "GET /rest/api/3/project/{projectIdOrKey}/version", "/rest/api/3/project/"+url.PathEscape(projectID)+"/version",
		pageQuery(startAt, maxResults, "orderBy", "sequence"), maxResults, func(p *VersionPage) int { return len(p.Values) })
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
	return getCharged(ctx, c, "GET /rest/api/3/project/{projectIdOrKey}/components", "/rest/api/3/project/"+url.PathEscape(projectID)+"/components",
		nil, 0, func(p *[]Component) int { return len(*p) })
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
	return getCharged(ctx, c, "GET /rest/api/3/users/search", "/rest/api/3/users/search",
		pageQuery(startAt, maxResults), maxResults, func(p *[]Account) int { return identityPoints * len(*p) })
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
	return getCharged(ctx, c, "GET /rest/agile/1.0/board", "/rest/agile/1.0/board",
		pageQuery(startAt, maxResults), maxResults, func(p *BoardPage) int { return len(p.Values) })
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
	return getCharged(ctx, c, "GET /rest/agile/1.0/board/{boardId}/sprint", "/rest/agile/1.0/board/"+strconv.FormatInt(boardID, 10)+"/sprint",
		pageQuery(startAt, maxResults), maxResults, func(p *SprintPage) int { return len(p.Values) })
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
	return getCharged(ctx, c, "GET /rest/agile/1.0/sprint/{sprintId}/issue", "/rest/agile/1.0/sprint/"+strconv.FormatInt(sprintID, 10)+"/issue",
		pageQuery(startAt, maxResults, "fields", "id"), maxResults, func(p *SprintIssuePage) int { return len(p.Issues) })
}

// getCharged is every table reader's one call: GET path with q (a call that
// reads at most maxResults objects; 0: not known), decoded into a T, and
// the objects it holds (counted by objects, in points) charged to ep's
// quota as Jira charges them.
func getCharged[T any](ctx context.Context, c *Client, ep, path string, q url.Values, maxResults int, objects func(*T) int) (T, error) {
	var out T
	if err := c.doExpect(ctx, maxResults, http.MethodGet, path, q, nil, &out); err != nil {
		var zero T
		return zero, err
	}
	c.chargeObjects(ctx, ep, objects(&out))
	return out, nil
}

// pageQuery is startAt and maxResults, and the name-value pairs kv.
func pageQuery(startAt, maxResults int, kv ...string) url.Values {
	q := url.Values{"startAt": {strconv.Itoa(startAt)}, "maxResults": {strconv.Itoa(maxResults)}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}
