package staff_test

import (
	"slices"
	"testing"

	"ferry/internal/staff"
)

// expected is the authorization matrix as issue 15 and the statement word
// it, written out here independently of the code's matrix: admin (staff
// and configuration), support (tenant Account Data, request logs with a
// reason), developer (request logs with a reason), billing (billing data;
// none built yet), auditor (read-only: audit trail, staff and roles). Every
// role may sign in, see the inventory (counts, no contents) and the
// subprocessors (public). Scrubbed error events (issue 18): developers, whose
// work they are, and support, who match them to the problems customers
// report — the statement's "support and development teams". Backups (issue
// 19): admin runs them (configuration), auditor sees them read-only (the
// verify report). A permission missing here fails the test.
var expected = map[staff.Permission][]staff.Role{
	staff.UseConsole:        {staff.Admin, staff.Support, staff.Developer, staff.Billing, staff.Auditor},
	staff.ViewTenants:       {staff.Admin, staff.Support},
	staff.ViewInventory:     {staff.Admin, staff.Support, staff.Developer, staff.Billing, staff.Auditor},
	staff.ViewRequestLog:    {staff.Support, staff.Developer},
	staff.DecryptRequestLog: {staff.Support, staff.Developer},
	staff.ViewStaff:         {staff.Admin, staff.Auditor},
	staff.ManageStaff:       {staff.Admin},
	staff.ViewSubprocessors: {staff.Admin, staff.Support, staff.Developer, staff.Billing, staff.Auditor},
	staff.ViewAuditTrail:    {staff.Admin, staff.Auditor},
	staff.ViewErrors:        {staff.Support, staff.Developer},
	staff.ViewBackups:       {staff.Admin, staff.Auditor},
	staff.RunBackups:        {staff.Admin},
}

func TestAuthorizationMatrixCellByCell(t *testing.T) {
	cells := 0
	for _, p := range staff.Permissions() {
		want, ok := expected[p.Permission]
		if !ok {
			t.Errorf("permission %s has no row in the expected matrix: decide which roles hold it and add it here", p.Permission)
			continue
		}
		for _, r := range staff.Roles() {
			cells++
			if got := r.Can(p.Permission); got != slices.Contains(want, r) {
				t.Errorf("%s × %s: Can = %v, want %v", r, p.Permission, got, !got)
			}
		}
	}
	if len(expected) != len(staff.Permissions()) {
		t.Errorf("expected matrix has %d permissions, the code %d", len(expected), len(staff.Permissions()))
	}
	if cells != len(staff.Roles())*len(staff.Permissions()) || cells == 0 {
		t.Errorf("checked %d cells", cells)
	}
	// Nobody but the roles the statement names ever reads Logs Data.
	for _, p := range staff.Permissions() {
		if p.BreakGlass && (staff.Billing.Can(p.Permission) || staff.Auditor.Can(p.Permission) || staff.Admin.Can(p.Permission)) {
			t.Errorf("break-glass permission %s is held by a role outside support and development", p.Permission)
		}
	}
	if staff.Role("root").Can(staff.UseConsole) {
		t.Error("an unknown role holds a permission")
	}
}
