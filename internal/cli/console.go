package cli

import (
	"os"
	"strconv"

	"ferry/internal/audit"
	"ferry/internal/audit/backuptarget"
	"ferry/internal/backup"
	"ferry/internal/config"
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
	upstream := ""
	if a.forwarder != nil {
		upstream = console.ErrorsUpstreamOf(a.forwarder.DSN)
	}
	a.console = console.New(console.Deps{Config: a.cfg, Log: a.log, DB: a.db, Staff: a.staff, Audit: a.trail,
		Requests: a.requests, Tenants: a.tenants, Subprocessors: gate.Registry(), Inventory: inventory(a.cfg), SSO: sso,
		Errors: a.errorStore, ErrorsUpstream: upstream, Backups: a.backups})
}

// inventory lists where each data category of the statement is kept. An
// area that adds a table adds its line here (or, for a table that holds no
// data category, to inventoryExempt): TestInventoryAccountsForEveryTable
// fails otherwise.
func inventory(cfg config.Config) []console.InventoryItem {
	logDays := cfg.RequestLogDays
	days := func(n int) string { return strconv.Itoa(n) + " days" }
	return []console.InventoryItem{
		{Category: "Account Data", Promise: "P2", Holds: "a Jira site that installed the app", Table: "installations", TimeColumn: "created_at",
			Retention: "while installed; marked for deletion on uninstall"},
		{Category: "User-Account Data", Promise: "P6", Holds: "a personal access token (hash; owner encrypted and pseudonymised)", Table: "access_tokens",
			TimeColumn: "created_at", Retention: "until it expires or is revoked"},
		{Category: "User-Account Data", Promise: "P6", Holds: "an access token's creation, revocation or expiry, and who did it (pseudonym; accountId encrypted)",
			Table: "token_events", TimeColumn: "at", Retention: "the token's expiry plus 90 days"},
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
		{Category: "Real-time Error Tracking Data", Promise: "P5", Holds: "a scrubbed error event (no personal data; the user as a pseudonym)",
			Table: "error_events", TimeColumn: "received_at", Retention: days(cfg.ErrorsRetentionDays)},
		{Category: "Real-time Error Tracking Data", Promise: "P5, P15", Holds: "a scrubbed item still to reach Sentry, or refused by it",
			Table: "error_outbox", TimeColumn: "created_at", Retention: "until Sentry takes it; at most " + days(cfg.ErrorsRetentionDays)},
		{Category: "Backups", Promise: "P11", Holds: "a backup attempt and its restore drill (the backups are in the backup target)",
			Table: "backup_runs", TimeColumn: "started_at", Retention: "kept (a few hundred bytes a day)"},
		{Category: "Deletion records", Promise: "P16", Holds: "a purged tenant: when, why, rows per category before and after (no personal data)",
			Table: "tenant_deletions", TimeColumn: "started_at", Retention: "kept: the proof a tenant's data was deleted"},
		{Category: "User-Account Data", Promise: "P6", Holds: "an account Ferry holds data of (accountId encrypted), for Atlassian's personal data reporting",
			Table: "privacy_accounts", TimeColumn: "held_since", Retention: "while any data of the account is held"},
		{Category: "User-Account Data", Promise: "P6", Holds: "an answer of Atlassian's personal data reporting (closed or updated), without the account",
			Table: "privacy_account_events", TimeColumn: "at", Retention: "until the tenant is purged"},
	}
}

// inventoryExempt are the tables that hold no data category of the
// statement, with why.
var inventoryExempt = map[string]string{
	"kek_versions":         "which key-encryption keys wrap this database's keys: key references and check values, no data",
	"audit_keys":           "the audit trail's checkpoint-signing keys, wrapped by the KEK",
	"audit_import":         "a staging table for audit rows of earlier versions, emptied each time Ferry opens the database",
	"backup_keys":          "the backups' restore identities and manifest-signing keys, wrapped by the KEK",
	"error_pseudonym_key":  "the key of error tracking's user pseudonyms, wrapped by the KEK",
	"privacy_report_state": "one row: the reporting cycle Atlassian asked for and when Ferry may call again",
	"seen_tokens":          "digests of lifecycle tokens already presented, kept until the tokens expire so a replay is refused: no one's data",
	"goose_db_version":     "the schema's migration history: which migrations ran and when, no data",
}

// checkpointTarget is where signed audit checkpoints are written and read:
// FERRY_AUDIT_CHECKPOINT_DIR when it is set; otherwise the backup target
// when one is configured (FERRY_S3_BUCKET or FERRY_BACKUP_DIR), under
// audit/ — still reading what was written to the default directory before,
// if it exists; otherwise the default directory, DATA_DIR/audit-checkpoints.
func checkpointTarget(cfg config.Config, backups backup.Target) audit.Target {
	dir := audit.DirTarget{Dir: cfg.CheckpointDir()}
	if cfg.AuditCheckpointDir != "" || (cfg.S3Bucket == "" && cfg.BackupDir == "") {
		return dir
	}
	t := backuptarget.Target{Objects: backups}
	if st, err := os.Stat(dir.Dir); err == nil && st.IsDir() {
		return audit.WithEarlier(t, dir)
	}
	return t
}
