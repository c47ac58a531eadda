package export

import (
	"context"

	"ferry/internal/jira"
)

// versionsTable: the versions (releases) of every project the user may
// browse.
var versionsTable = &Table{
	Name: "Versions", EntityType: "Version", Key: "Id",
	Doc: "Versions of those projects: dates, released, archived.",
	Columns: []Column{
		col("Id", EdmInt64, true), col("ProjectId", EdmInt64, true), col("Name", EdmString, true),
		col("Description", EdmString, false), col("StartDate", EdmDate, false), col("ReleaseDate", EdmDate, false),
		col("Released", EdmBoolean, true), col("Archived", EdmBoolean, true),
	},
	Refs: []Ref{{Name: "Project", Property: "ProjectId", Target: "Projects", ReferencedProperty: "Id", Partner: "Versions"}},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		return eachProject(ctx, c, func(p jira.ProjectInfo) error {
			return pageAll(func(start int) (int, bool, error) {
				page, err := c.ProjectVersions(ctx, p.ID, start, 50)
				if err != nil {
					return 0, false, err
				}
				for _, v := range page.Values {
					if err := emit([]any{atoi64(v.ID), atoi64(p.ID), v.Name, orNull(v.Description),
						jiraDate(v.StartDate), jiraDate(v.ReleaseDate), v.Released, v.Archived}); err != nil {
						return 0, false, err
					}
				}
				return len(page.Values), page.IsLast, nil
			})
		})
	},
}
