package export

import (
	"context"

	"ferry/internal/jira"
)

// componentsTable: the components of every project the user may browse.
var componentsTable = &Table{
	Name: "Components", EntityType: "Component", Key: "Id",
	Doc: "Components of those projects, with their leads.",
	Columns: []Column{
		col("Id", EdmInt64, true), col("ProjectId", EdmInt64, true), col("Name", EdmString, true),
		col("Description", EdmString, false), col("Lead", EdmString, false),
	},
	Refs: []Ref{{Name: "Project", Property: "ProjectId", Target: "Projects", ReferencedProperty: "Id", Partner: "Components"}},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		return eachProject(ctx, c, func(p jira.ProjectInfo) error {
			list, err := c.ProjectComponents(ctx, p.ID)
			if err != nil {
				return err
			}
			for _, cm := range list {
				if err := emit([]any{atoi64(cm.ID), atoi64(p.ID), cm.Name, orNull(cm.Description), displayName(cm.Lead)}); err != nil {
					return err
				}
			}
			return nil
		})
	},
}
