package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/jobs"
	"ferry/internal/store"
)

// End of a subscription (statement: "If a customer unsubscribes from our
// Application we mark stored Customer Data for deletion. However, the
// customer can contact us to ask for immediate manual deletion."; P16).
//
// A tenant is marked pending_deletion, with purge_after = now + Policy.Grace,
// when the app is uninstalled (Connect or Forge), when its licence has been
// inactive for longer than Policy.LicenseLapse, or when it has been disabled
// for longer than Policy.DisabledLapse. A reinstall before purge_after
// revives it with everything intact; after purge_after the tenant.purge job
// (purge.go) deletes every row of it and shreds its keyset, and a reinstall
// starts clean. A site admin or an operator can ask for immediate deletion:
// purge_after = now, and the purge runs within minutes.

// Cause says what marked a tenant for deletion.
type Cause string

const (
	CauseUninstalled     Cause = "uninstalled"      // Connect uninstalled, Forge preUninstall
	CauseLicenseInactive Cause = "license-inactive" // licence inactive longer than Policy.LicenseLapse
	CauseDisabled        Cause = "disabled"         // disabled longer than Policy.DisabledLapse
	CauseSiteAdmin       Cause = "site-admin"       // immediate deletion asked for on the app's admin page
	CauseOperator        Cause = "operator"         // immediate deletion by `ferry tenants delete`
)

// Policy says when tenants are marked and purged.
type Policy struct {
	Grace         time.Duration // FERRY_PURGE_GRACE: from marking to purge
	LicenseLapse  time.Duration // FERRY_PURGE_LICENSE_INACTIVE_AFTER: an inactive licence marks the tenant after this
	DisabledLapse time.Duration // FERRY_PURGE_DISABLED_AFTER: a disabled app marks the tenant after this
}

// DefaultPolicy: 30 days of grace; a licence inactive for 30 days or an app
// disabled for 90 days marks the tenant.
func DefaultPolicy() Policy {
	return Policy{Grace: 30 * 24 * time.Hour, LicenseLapse: 30 * 24 * time.Hour, DisabledLapse: 90 * 24 * time.Hour}
}

// SetPolicy replaces the deletion policy (before the store is used).
func (s *Store) SetPolicy(p Policy) { s.policy = p }

// Policy returns the deletion policy in force.
func (s *Store) Policy() Policy { return s.policy }

// AccountHolder records that Ferry holds data of an Atlassian account in a
// tenant, so that it is reported to Atlassian (privacy.Register does).
type AccountHolder interface {
	Hold(ctx context.Context, tenantID, accountID string) error
}

// SetAccountHolder makes Install record the installing user's account.
func (s *Store) SetAccountHolder(h AccountHolder) { s.accounts = h }

// ErrPurging: the tenant is past its purge_after and is being deleted; a
// reinstall can be retried in a moment. It is an *apperr.Error (503).
var ErrPurging = &apperr.Error{Code: apperr.EUNAVAILABLE, Message: "this site's earlier installation is being deleted; retry in a minute"}

// dueAt is when a tenant pending deletion is due for its purge: its
// purge_after, or (marked before purge_after existed) the mark plus grace.
func (s *Store) dueAt(in Installation) time.Time {
	switch {
	case in.State != PendingDeletion:
		return time.Time{}
	case !in.PurgeAfter.IsZero():
		return in.PurgeAfter
	case !in.UninstalledAt.IsZero():
		return in.UninstalledAt.Add(s.policy.Grace)
	}
	return time.Time{}
}

// overdue reports whether in is pending deletion and past its purge time.
func (s *Store) overdue(in Installation) bool {
	due := s.dueAt(in)
	return !due.IsZero() && !due.After(s.db.Now())
}

// purgeOverdue finishes an overdue tenant before a reinstall starts clean.
func (s *Store) purgeOverdue(ctx context.Context, tenantID string) error {
	if s.purgeNow == nil {
		return ErrPurging
	}
	if err := s.purgeNow(ctx, tenantID); err != nil {
		return fmt.Errorf("purge the overdue installation: %w", err)
	}
	return nil
}

// Deletion is a request for a tenant's deletion.
type Deletion struct {
	Cause  Cause
	Reason string // an operator's reason; never personal data
	By     string // the operator's name, for CauseOperator
	Actor  string // who asked, as the audit trail names them: "cli:NAME", or "jira:" and the user's pseudonym
	// Immediate sets purge_after to now; otherwise now + Policy.Grace. An
	// immediate request also shortens the wait of a tenant already pending.
	Immediate bool
}

// MarkForDeletion marks a tenant pending deletion. A tenant already pending
// keeps its first mark unless the request is immediate, which brings its
// purge forward and names the new cause. changed reports whether anything
// changed; ErrNotFound if there is no such tenant.
func (s *Store) MarkForDeletion(ctx context.Context, tenantID string, d Deletion) (changed bool, err error) {
	if d.Cause == "" {
		return false, errors.New("tenant: a deletion needs a cause")
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		now := tx.Now()
		var q string
		after := now.Add(s.policy.Grace)
		if d.Immediate {
			after = now
			q = `UPDATE installations SET state = 'pending_deletion', uninstalled_at = COALESCE(uninstalled_at, $2),
				updated_at = $2, purge_after = $3, deletion_cause = $4, deletion_reason = $5, deletion_by = $6
				WHERE tenant_id = $1`
		} else {
			q = `UPDATE installations SET state = 'pending_deletion', uninstalled_at = $2, updated_at = $2,
				purge_after = $3, deletion_cause = $4, deletion_reason = $5, deletion_by = $6
				WHERE tenant_id = $1 AND state <> 'pending_deletion'`
		}
		res, err := tx.ExecContext(ctx, q, tenantID, now, after, string(d.Cause), d.Reason, d.By)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM installations WHERE tenant_id = $1`, tenantID).Scan(&one); err != nil {
				return ErrNotFound
			}
		}
		changed = n > 0
		return nil
	})
	return changed, err
}

// LicenseCheck asks the tenant's Jira whether the app's licence is active
// (atlassian.Connect.LicenseActive).
type LicenseCheck func(ctx context.Context, inst Installation) (active bool, err error)

// ExpiryResult says what one expiry pass saw and did.
type ExpiryResult struct {
	Checked        int // active tenants whose licence was asked about
	Unknown        int // of those, where Jira could not say: nothing changes for them
	Inactive       int // active tenants whose licence is inactive now
	MarkedLicense  int // marked for deletion: licence inactive longer than Policy.LicenseLapse
	MarkedDisabled int // marked for deletion: disabled longer than Policy.DisabledLapse
}

// Expire notes when each active tenant's licence went inactive and marks for
// deletion the tenants whose licence has been inactive, or whose app has been
// disabled, for longer than the policy allows. A licence Jira cannot answer
// about changes nothing: a tenant is never marked on a guess.
func (s *Store) Expire(ctx context.Context, license LicenseCheck) (ExpiryResult, error) {
	var r ExpiryResult
	active, err := s.Active(ctx)
	if err != nil {
		return r, err
	}
	for _, in := range active {
		if license == nil {
			break
		}
		r.Checked++
		ok, err := license(ctx, in)
		if err != nil {
			r.Unknown++
			continue
		}
		q := `UPDATE installations SET license_inactive_since = NULL WHERE tenant_id = $1 AND license_inactive_since IS NOT NULL`
		if !ok {
			r.Inactive++
			q = `UPDATE installations SET license_inactive_since = $2 WHERE tenant_id = $1 AND license_inactive_since IS NULL AND state = 'active'`
		}
		if err := s.db.InTx(ctx, func(tx *store.Tx) error {
			args := []any{in.TenantID}
			if !ok {
				args = append(args, tx.Now())
			}
			_, err := tx.ExecContext(ctx, q, args...)
			return err
		}); err != nil {
			return r, err
		}
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		now := tx.Now()
		res, err := tx.ExecContext(ctx, `UPDATE installations SET state = 'pending_deletion', uninstalled_at = $1, updated_at = $1,
			purge_after = $2, deletion_cause = 'license-inactive'
			WHERE state = 'active' AND license_inactive_since IS NOT NULL AND license_inactive_since <= $3`,
			now, now.Add(s.policy.Grace), now.Add(-s.policy.LicenseLapse))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		r.MarkedLicense = int(n)
		res, err = tx.ExecContext(ctx, `UPDATE installations SET state = 'pending_deletion', uninstalled_at = $1, updated_at = $1,
			purge_after = $2, deletion_cause = 'disabled'
			WHERE state = 'disabled' AND disabled_at IS NOT NULL AND disabled_at <= $3`,
			now, now.Add(s.policy.Grace), now.Add(-s.policy.DisabledLapse))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		r.MarkedDisabled = int(n)
		return nil
	})
	return r, err
}

// ExpiryJobName is the job's name for `ferry jobs run`.
const ExpiryJobName = "tenant.expiry"

// ExpiryJob marks tenants whose licence has lapsed or whose app has stayed
// disabled for too long. Hourly: the periods are weeks long, and a licence
// answer is cached for minutes anyway.
func ExpiryJob(s *Store, license LicenseCheck, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  ExpiryJobName,
		Doc:   "mark for deletion tenants whose licence is inactive or app disabled for too long",
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			r, err := s.Expire(ctx, license)
			if log != nil {
				log.Info("tenant expiry", "checked", r.Checked, "unknown", r.Unknown, "inactive", r.Inactive,
					"marked_license", r.MarkedLicense, "marked_disabled", r.MarkedDisabled)
			}
			return err
		},
	}
}

// ForgetInstaller blanks the installer pseudonym if it is pseudonym: the
// account was closed (privacy reporting). It reports the rows changed.
func (s *Store) ForgetInstaller(ctx context.Context, tenantID, pseudonym string) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE installations SET installed_by = '' WHERE tenant_id = $1 AND installed_by = $2 AND installed_by <> ''`,
			tenantID, pseudonym)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
