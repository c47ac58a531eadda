package export

import (
	"context"

	"ferry/internal/jira"
)

// projectsTable: the projects the token's owner may browse, with their
// leads by display name (project/search).
var projectsTable = &Table{
	Name: "Projects", EntityType: "Project", Key: "Id",
	Doc: "The projects you may browse: key, name, type, category, lead.",
	Columns: []Column{
		col("Id", EdmInt64, true), col("Key", EdmString, true), col("Name", EdmString, true),
		col("ProjectType", EdmString, false), col("Category", EdmString, false), col("Lead", EdmString, false),
	},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		return eachProject(ctx, c, func(p jira.ProjectInfo) error {
			var cat any
			if p.ProjectCategory != nil {
				cat = orNull(p.ProjectCategory.Name)
			}
			return emit([]any{atoi64(p.ID), p.Key, p.Name, orNull(p.ProjectTypeKey), cat, displayName(p.Lead)})
		})
	},
}

// eachProject calls fn for every project the user may browse, in key order.
func eachProject(ctx context.Context, c *jira.Client, fn func(jira.ProjectInfo) error) error {
	return pageAll(func(start int) (int, bool, error) {
		p, err := c.Projects(ctx, start, 50)
		if err != nil {
			return 0, false, err
		}
		for _, pr := range p.Values {
			if err := fn(pr); err != nil {
				return 0, false, err
			}
		}
		return len(p.Values), p.IsLast, nil
	})
}
