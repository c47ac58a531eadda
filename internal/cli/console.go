package cli

import (
	"strconv"

	"ferry/internal/egress"
	"ferry/internal/web/console"
)

// wireConsole builds the staff console: its pages read through the areas'
// stores, single sign-on (when configured) calls the issuer through the
// egress gate.
func (a *app) wireConsole(gate *egress.Gate) {
	var sso *console.SSO
	if a.cfg.ConsoleOIDCIssuer != "" {
		sso = &console.SSO{Issuer: a.cfg.ConsoleOIDCIssuer, ClientID: a.cfg.ConsoleOIDCClientID, ClientSecret: a.cfg.ConsoleOIDCSecret,
			RedirectURL: a.cfg.ConsoleBaseURL() + "/console/sso/callback", Client: gate.Client(egress.StaffSSO)}
	}
	a.console = console.New(console.Deps{Config: a.cfg, Log: a.log, DB: a.db, Staff: a.staff, Audit: a.trail,
		Requests: a.requests, Tenants: a.tenants, Subprocessors: gate.Registry(), Inventory: inventory(a.cfg.RequestLogDays), SSO: sso})
}

// inventory lists where each data category of the statement is kept. An
// area that adds a table adds its line here.
func inventory(logDays int) []console.InventoryItem {
	days := func(n int) string { return strconv.Itoa(n) + " days" }
	return []console.InventoryItem{
		{Category: "Account Data", Promise: "P2", Holds: "a Jira site that installed the app", Table: "installations", TimeColumn: "created_at",
			Retention: "while installed; marked for deletion on uninstall"},
		{Category: "User-Account Data", Promise: "P6", Holds: "a personal access token (hash; owner encrypted and pseudonymised)", Table: "access_tokens",
			TimeColumn: "created_at", Retention: "until it expires or is revoked"},
		{Category: "Tenant keys", Promise: "P6, P16", Holds: "a tenant's wrapped keyset (not shredded)", Table: "tenant_keys", TimeColumn: "created_at",
			Where: "shredded_at IS NULL", Retention: "until the tenant is purged"},
		{Category: "Logs Data", Promise: "P7", Holds: "a logged request (metadata; the request sealed)", Table: "request_log", TimeColumn: "at",
			Retention: days(logDays)},
		{Category: "Log day keys", Promise: "P7", Holds: "a day's request-log key (not destroyed)", Table: "log_day_keys", TimeColumn: "created_at",
			Where: "destroyed_at IS NULL", Retention: days(logDays)},
		{Category: "Staff accounts", Promise: "P14", Holds: "a staff member (employee or subcontractor)", Table: "staff_accounts", TimeColumn: "created_at",
			Retention: "kept, disabled when they leave"},
		{Category: "Staff sessions", Promise: "P14", Holds: "a console session", Table: "staff_sessions", TimeColumn: "created_at",
			Retention: "30 min idle, 12 h at most"},
		{Category: "Audit trail", Promise: "P14", Holds: "an access or security decision, hash-chained", Table: "audit_trail", TimeColumn: "at",
			Retention: "kept for good (append-only)"},
	}
}
