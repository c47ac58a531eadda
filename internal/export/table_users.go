package export

import (
	"context"

	"ferry/internal/jira"
)

// usersTable: the site's users (users/search) — account id, display name,
// active, account type. Never an email address: Ferry does not even decode
// it.
var usersTable = &Table{
	Name: "Users", EntityType: "User", Key: "AccountId",
	Doc: "The site's users: account id, display name, active, type — never an email address.",
	Columns: []Column{
		col("AccountId", EdmString, true), col("DisplayName", EdmString, false),
		col("Active", EdmBoolean, true), col("AccountType", EdmString, false),
	},
	Site: func(ctx context.Context, c *jira.Client, emit func([]any) error) error {
		const size = 100
		return pageAll(func(start int) (int, bool, error) {
			list, err := c.UsersPage(ctx, start, size)
			if err != nil {
				return 0, false, err
			}
			for _, u := range list {
				if err := emit([]any{u.AccountID, orNull(u.DisplayName), u.Active, orNull(u.AccountType)}); err != nil {
					return 0, false, err
				}
			}
			return len(list), len(list) < size, nil
		})
	},
}
