// Package staff keeps "Only authorized Alpha Serve employees and
// subcontractors from our support and development teams have access to
// Customer Data. Such subcontractors are contractually bound to the same
// data security and privacy standards" (P14) checkable.
//
// It owns the staff accounts (employees and subcontractors, whose access ends
// with their contract), the one authorization matrix (roles × permissions,
// this file), sign-in (argon2id password plus mandatory TOTP, or OIDC single
// sign-on), server-side sessions, and break-glass grants: reading anything
// sensitive about a tenant first records who, in which role, why and for
// which ticket in the audit trail, and only then hands out a Grant that the
// reading code demands.
package staff

import (
	"fmt"
	"slices"
)

// Role is what a staff member does; it decides what they may see.
type Role string

const (
	Admin     Role = "admin"     // staff accounts and configuration; backups
	Support   Role = "support"   // tenants' Account Data; scrubbed error events; request logs with a reason
	Developer Role = "developer" // scrubbed error events; request logs with a reason
	Billing   Role = "billing"   // billing data and purchaser contacts
	Auditor   Role = "auditor"   // read-only: the audit trail, staff and roles, backups
)

// Roles lists every role in a stable order.
func Roles() []Role { return []Role{Admin, Support, Developer, Billing, Auditor} }

// ParseRole accepts a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles(), r) {
		return "", fmt.Errorf("%q is not a role (admin, support, developer, billing, auditor)", s)
	}
	return r, nil
}

// Permission is one thing a staff member may do: open a console page or
// perform a data action.
type Permission string

const (
	UseConsole        Permission = "console.use"        // sign in and see the overview
	ViewTenants       Permission = "tenants.view"       // tenants' Account Data: state, product, dates
	ViewInventory     Permission = "inventory.view"     // row counts and oldest-record ages per data category
	ViewRequestLog    Permission = "reqlog.view"        // request-log metadata (no request contents)
	DecryptRequestLog Permission = "reqlog.decrypt"     // a logged request's contents (break-glass)
	ViewStaff         Permission = "staff.view"         // staff accounts and roles
	ManageStaff       Permission = "staff.manage"       // add and disable staff accounts
	ViewSubprocessors Permission = "subprocessors.view" // the declared subprocessors
	ViewAuditTrail    Permission = "audit.view"         // the audit trail and its verification
	ViewErrors        Permission = "errors.view"        // scrubbed error events and their forwarding to Sentry
	ViewBackups       Permission = "backups.view"       // backups, their state and restore drills
	RunBackups        Permission = "backups.run"        // back up now; run a restore drill
)

// PermissionInfo describes a permission.
type PermissionInfo struct {
	Permission Permission
	Doc        string
	// BreakGlass permissions open data about one tenant: a reason and a
	// ticket are recorded before anything is shown.
	BreakGlass bool
	// Category is the statement's data category the permission reads.
	Category string
}

var permissions = []PermissionInfo{
	{UseConsole, "sign in to the staff console", false, "Staff accounts"},
	{ViewTenants, "see tenants' Account Data: state, product, dates", false, "Account Data"},
	{ViewInventory, "see the data inventory (counts and ages, no contents)", false, "Inventory"},
	{ViewRequestLog, "look up request-log metadata", false, "Logs Data"},
	{DecryptRequestLog, "decrypt one logged request (reason and ticket first)", true, "Logs Data"},
	{ViewStaff, "see staff accounts and their roles", false, "Staff accounts"},
	{ManageStaff, "add and disable staff accounts", false, "Staff accounts"},
	{ViewSubprocessors, "see the declared subprocessors", false, "Subprocessors"},
	{ViewAuditTrail, "read and verify the audit trail", false, "Audit trail"},
	{ViewErrors, "see scrubbed error events and their forwarding to Sentry", false, "Real-time Error Tracking Data"},
	{ViewBackups, "see the backups, their state and the restore drills", false, "Backups"},
	{RunBackups, "back up now and run a restore drill", false, "Backups"},
}

// matrix is the authorization matrix: the only place that says which role
// may do what. Tested cell by cell in roles_test.go and, over HTTP, for
// every console page in internal/web/console.
var matrix = map[Role][]Permission{
	Admin:     {UseConsole, ViewTenants, ViewInventory, ViewStaff, ManageStaff, ViewSubprocessors, ViewAuditTrail, ViewBackups, RunBackups},
	Support:   {UseConsole, ViewTenants, ViewInventory, ViewRequestLog, DecryptRequestLog, ViewSubprocessors, ViewErrors},
	Developer: {UseConsole, ViewInventory, ViewRequestLog, DecryptRequestLog, ViewSubprocessors, ViewErrors},
	Billing:   {UseConsole, ViewInventory, ViewSubprocessors},
	Auditor:   {UseConsole, ViewInventory, ViewStaff, ViewSubprocessors, ViewAuditTrail, ViewBackups},
}

// Can reports whether role r holds permission p.
func (r Role) Can(p Permission) bool { return slices.Contains(matrix[r], p) }

// Permissions lists every permission in a stable order.
func Permissions() []PermissionInfo { return slices.Clone(permissions) }

// LookupPermission describes p; ok is false for a permission the matrix does
// not know.
func LookupPermission(p Permission) (PermissionInfo, bool) {
	for _, i := range permissions {
		if i.Permission == p {
			return i, true
		}
	}
	return PermissionInfo{}, false
}

// RolesWith lists the roles holding p.
func RolesWith(p Permission) []Role {
	var out []Role
	for _, r := range Roles() {
		if r.Can(p) {
			out = append(out, r)
		}
	}
	return out
}
