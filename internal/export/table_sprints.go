package export

import (
	"context"
	"net/http"

	"ferry/internal/jira"
)

// sprintsTable: the sprints of every board the user may see (Jira
// Software's Agile API). A sprint shared by several boards is listed once,
// under the board it was created on.
var sprintsTable = &Table{
	Name: "Sprints", EntityType: "Sprint", Key: "Id",
	Doc: "Sprints of the boards you may see: board, state, dates.",
	Columns: []Column{
		col("Id", EdmInt64, true), col("BoardId", EdmInt64, true), col("Board", EdmString, false),
		col("Name", EdmString, true), col("State", EdmString, true), col("StartDate", EdmDateTimeOffset, false),
		col("EndDate", EdmDateTimeOffset, false), col("CompleteDate", EdmDateTimeOffset, false), col("Goal", EdmString, false),
	},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		return eachSprint(ctx, c, func(b jira.Board, s jira.Sprint) error {
			return emit([]any{s.ID, b.ID, orNull(b.Name), s.Name, s.State, jiraTime(s.StartDate), jiraTime(s.EndDate), jiraTime(s.CompleteDate), orNull(s.Goal)})
		})
	},
}

// sprintIssuesTable: which issues each sprint holds, as the user may see
// them.
var sprintIssuesTable = &Table{
	Name: "SprintIssues", EntityType: "SprintIssue", Key: "Id",
	Doc: "Which issues each sprint holds.",
	Columns: []Column{
		col("Id", EdmString, true), col("SprintId", EdmInt64, true), col("IssueId", EdmInt64, true), col("IssueKey", EdmString, true),
	},
	Refs: []Ref{
		{Name: "Sprint", Property: "SprintId", Target: "Sprints", ReferencedProperty: "Id", Partner: "Issues"},
		{Name: "Issue", Property: "IssueId", Target: TableIssues, ReferencedProperty: "Id", Partner: "Sprints"},
	},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		return eachSprint(ctx, c, func(_ jira.Board, s jira.Sprint) error {
			sid := strconvI(s.ID)
			return pageAll(func(start int) (int, bool, error) {
				p, err := c.SprintIssues(ctx, s.ID, start, 100)
				if err != nil {
					return 0, false, err
				}
				for _, is := range p.Issues {
					if err := emit([]any{sid + "-" + is.ID, s.ID, atoi64(is.ID), is.Key}); err != nil {
						return 0, false, err
					}
				}
				return len(p.Issues), start+len(p.Issues) >= p.Total, nil
			})
		})
	},
}

// eachSprint calls fn for each sprint of each board the user may see,
// every sprint once (under the board it was created on, or the first
// board that lists it).
func eachSprint(ctx context.Context, c *jira.Client, fn func(jira.Board, jira.Sprint) error) error {
	var boards []jira.Board
	if err := pageAll(func(start int) (int, bool, error) {
		p, err := c.Boards(ctx, start, 50)
		boards = append(boards, p.Values...)
		return len(p.Values), p.IsLast, err
	}); err != nil {
		return err
	}
	visible := map[int64]bool{}
	for _, b := range boards {
		visible[b.ID] = true
	}
	seen := map[int64]bool{}
	for _, b := range boards {
		if b.Type == "kanban" {
			continue // Kanban boards have no sprints (Jira answers 400)
		}
		err := pageAll(func(start int) (int, bool, error) {
			p, err := c.BoardSprints(ctx, b.ID, start, 50)
			if start == 0 && jira.IsStatus(err, http.StatusBadRequest) {
				return 0, true, nil // a team-managed board with sprints turned off
			}
			if err != nil {
				return 0, false, err
			}
			for _, s := range p.Values {
				if seen[s.ID] || s.OriginBoardID != 0 && s.OriginBoardID != b.ID && visible[s.OriginBoardID] {
					continue
				}
				seen[s.ID] = true
				if err := fn(b, s); err != nil {
					return 0, false, err
				}
			}
			return len(p.Values), p.IsLast, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
