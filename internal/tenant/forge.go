package tenant

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// Ferry on Forge (Forge Remote). Forge names an installation by its
// installationId, an ARI that is new for every install of the app on a site.
// One tenant per site whatever the platform:
//   - a Forge invocation for an installationId Ferry knows finds its tenant;
//   - one for an installationId it does not know finds the live Connect
//     tenant of the same site (same cloudId, no installationId yet) and gives
//     it the id: a Connect app moving to Forge keeps its keys, data sources
//     and tokens; the Connect installed callback that carries clientKey and
//     installationId together does the same from the other side (Install);
//   - otherwise it is a new, Forge-only tenant. It has no Connect identity:
//     its client_key holds the installationId and its shared secret is
//     empty, so no Connect lookup (ByClientKey) ever finds it.
//
// Every invocation also brings what Ferry needs to read Jira later with no
// invocation in flight: the latest app system token, kept only as AEAD
// ciphertext under the tenant key, and app.license with the time it was
// seen. Nothing here trusts a value that did not come from a verified
// Forge Invocation Token (internal/forge verifies them).

// License is what the latest Forge invocation said about the app's licence.
type License string

const (
	LicenseUnknown  License = ""         // no Forge invocation seen yet
	LicenseActive   License = "active"   // app.license.isActive
	LicenseInactive License = "inactive" // app.license present, not active
	LicenseNone     License = "none"     // no app.license: a free app, or a development or staging environment
)

// ForgeContact is what one verified Forge invocation says about its
// installation. Only values taken from a verified FIT belong here.
type ForgeContact struct {
	InstallationID string // app.installationId
	CloudID        string // from app.apiBaseUrl (/ex/jira/{cloudId})
	APIBaseURL     string // app.apiBaseUrl
	SiteURL        string // context.siteUrl of a UI invocation; "" otherwise
	WorkspaceARI   string // a context ARI from app.installation.contexts; "" if none
	AddonKey       string // FERRY_ADDON_KEY, for a new Forge-only tenant
	License        License
	// SystemToken is the invocation's app system token (x-forge-oauth-system);
	// nil if it carried none. It is kept if it outlives the stored one.
	SystemToken        []byte
	SystemTokenExpires time.Time
	Nonce              Nonce // the FIT's jti, used up with the write
	// NoCreate: an invocation that may not create a tenant (preUninstall of
	// an installation Ferry never saw).
	NoCreate bool
}

// ErrUninstalled: the Forge installation's tenant is pending deletion; a
// Forge reinstall arrives with a new installationId.
var ErrUninstalled = errors.New("tenant: this installation was uninstalled")

func systemTokenAD(tenantID string) []byte {
	return []byte("installations/forge_system_token/" + tenantID)
}

// ByInstallationID returns the installation with a Forge installationId.
func (s *Store) ByInstallationID(ctx context.Context, installationID string) (Installation, error) {
	if installationID == "" {
		return Installation{}, ErrNotFound
	}
	return scan(s.db.SQL.QueryRowContext(ctx, `SELECT `+columns+` FROM installations WHERE installation_id = $1`, installationID))
}

// Contact records a verified Forge invocation: it finds or makes the tenant
// (see the package comment above), keeps the system token if it outlives
// the stored one, and remembers the licence with its time, all with the
// FIT's jti used up in the same transaction. created reports a new tenant.
// A tenant pending deletion answers ErrUninstalled and changes nothing.
func (s *Store) Contact(ctx context.Context, c ForgeContact) (inst Installation, created bool, err error) {
	if c.InstallationID == "" || c.CloudID == "" || c.APIBaseURL == "" {
		return inst, false, errors.New("tenant: a Forge contact needs installationId, cloudId and apiBaseUrl")
	}
	for attempt := 0; attempt < 4; attempt++ {
		if err := s.unused(ctx, c.Nonce); err != nil {
			return inst, false, err
		}
		cur, err := s.ByInstallationID(ctx, c.InstallationID)
		if errors.Is(err, ErrNotFound) {
			cur, err = s.linkable(ctx, c.CloudID)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			if c.NoCreate {
				return inst, false, ErrNotFound
			}
			cur = Installation{TenantID: newTenantID()}
			if err := s.keys.EnsureTenant(ctx, cur.TenantID); err != nil {
				return inst, false, fmt.Errorf("tenant keys: %w", err)
			}
		case err != nil:
			return inst, false, err
		case cur.State == PendingDeletion:
			return cur, false, ErrUninstalled
		case cur.CloudID != "" && cur.CloudID != c.CloudID:
			return cur, false, &apperr.Error{Code: apperr.ECONFLICT, Field: "app.apiBaseUrl", Err: ErrIdentityChanged,
				Message: "this installation belongs to another site (cloudId)"}
		}
		var ct []byte
		if len(c.SystemToken) > 0 {
			if ct, err = s.keys.Encrypt(ctx, cur.TenantID, systemTokenAD(cur.TenantID), c.SystemToken); err != nil {
				return inst, false, fmt.Errorf("encrypt system token: %w", err)
			}
		}
		newTenant := cur.InstallationID == "" && cur.ClientKey == ""
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			if err := use(ctx, tx, c.Nonce); err != nil {
				return err
			}
			now := tx.Now()
			var res sql.Result
			var err error
			if newTenant {
				// Nothing to move from Connect: forge_migrated_at is now.
				res, err = tx.ExecContext(ctx, `INSERT INTO installations (tenant_id, addon_key, product_type, client_key,
					base_url, site_host, display_url, installation_id, shared_secret, state, created_at, installed_at, updated_at,
					cloud_id, api_base_url, workspace_ari, forge_migrated_at)
					VALUES ($1, $2, 'jira', $3, $4, $5, $4, $3, $6, 'active', $7, $7, $7, $8, $9, $10, $7)
					ON CONFLICT DO NOTHING`,
					cur.TenantID, c.AddonKey, c.InstallationID, c.SiteURL, SiteHost(c.SiteURL), []byte{}, now,
					c.CloudID, c.APIBaseURL, c.WorkspaceARI)
			} else {
				// A linked Connect tenant gains the installationId; a
				// Forge-only one learns its site URL from its first page.
				res, err = tx.ExecContext(ctx, `UPDATE installations SET installation_id = $2, cloud_id = $3, api_base_url = $4,
					workspace_ari = CASE WHEN $5 = '' THEN workspace_ari ELSE $5 END,
					base_url = CASE WHEN base_url = '' THEN $6 ELSE base_url END,
					site_host = CASE WHEN site_host = '' THEN $7 ELSE site_host END,
					display_url = CASE WHEN display_url = '' THEN $6 ELSE display_url END,
					updated_at = $8
					WHERE tenant_id = $1 AND installation_id IN ('', $2) AND state <> 'pending_deletion'`,
					cur.TenantID, c.InstallationID, c.CloudID, c.APIBaseURL, c.WorkspaceARI, c.SiteURL, SiteHost(c.SiteURL), now)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != 1 {
				return errChanged
			}
			if c.License != LicenseUnknown {
				if _, err := tx.ExecContext(ctx, `UPDATE installations SET forge_license = $2, forge_license_at = $3, forge_contact_at = $3
					WHERE tenant_id = $1`, cur.TenantID, string(c.License), now); err != nil {
					return err
				}
			} else if _, err := tx.ExecContext(ctx, `UPDATE installations SET forge_contact_at = $2 WHERE tenant_id = $1`, cur.TenantID, now); err != nil {
				return err
			}
			if ct != nil {
				// The token that lives longest wins, whatever order
				// concurrent invocations land in.
				_, err = tx.ExecContext(ctx, `UPDATE installations SET forge_system_token = $2, forge_system_token_expires = $3,
					forge_system_token_at = $4
					WHERE tenant_id = $1 AND (forge_system_token_expires IS NULL OR forge_system_token_expires <= $3)`,
					cur.TenantID, ct, c.SystemTokenExpires.UTC(), now)
			}
			return err
		})
		switch {
		case err == nil:
			inst, err = s.ByID(ctx, cur.TenantID)
			return inst, newTenant, err
		case errors.Is(err, ErrReplayed):
			if newTenant {
				_ = s.keys.Shred(ctx, cur.TenantID)
			}
			return inst, false, ErrReplayed
		case errors.Is(err, errChanged):
			if newTenant {
				_ = s.keys.Shred(ctx, cur.TenantID)
			}
			continue
		case isUniqueViolation(err):
			if newTenant {
				_ = s.keys.Shred(ctx, cur.TenantID)
			}
			continue // another replica made or linked it first: read again
		default:
			if newTenant {
				_ = s.keys.Shred(ctx, cur.TenantID)
			}
			return inst, false, fmt.Errorf("save Forge installation: %w", err)
		}
	}
	return inst, false, errors.New("tenant: installation changed concurrently; retry")
}

// linkable finds the live Connect tenant of a site that has no Forge
// installationId yet.
func (s *Store) linkable(ctx context.Context, cloudID string) (Installation, error) {
	return scan(s.db.SQL.QueryRowContext(ctx, `SELECT `+columns+` FROM installations
		WHERE cloud_id = $1 AND installation_id = '' AND state <> 'pending_deletion' AND `+connectRow+`
		ORDER BY created_at LIMIT 1`, cloudID))
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unique constraint") || strings.Contains(m, "duplicate key")
}

// ErrNoSystemToken: no app system token has reached Ferry for the tenant.
var ErrNoSystemToken = errors.New("tenant: no Forge app system token")

// SystemToken decrypts the tenant's latest app system token with its expiry
// and arrival. Callers keep it in memory only, for the call at hand.
func (s *Store) SystemToken(ctx context.Context, tenantID string) (token []byte, expires, at time.Time, err error) {
	var ct []byte
	var exp, rec sql.NullTime
	err = s.db.SQL.QueryRowContext(ctx, `SELECT forge_system_token, forge_system_token_expires, forge_system_token_at
		FROM installations WHERE tenant_id = $1`, tenantID).Scan(&ct, &exp, &rec)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, expires, at, ErrNotFound
	case err != nil:
		return nil, expires, at, err
	case len(ct) == 0 || !exp.Valid:
		return nil, expires, at, ErrNoSystemToken
	}
	token, err = s.keys.Decrypt(ctx, tenantID, systemTokenAD(tenantID), ct)
	if errors.Is(err, keys.ErrShredded) {
		return nil, expires, at, ErrNoSystemToken
	}
	if err != nil {
		return nil, expires, at, fmt.Errorf("system token: %w", err)
	}
	return token, exp.Time.UTC(), rec.Time.UTC(), nil
}

// MarkMigrated records that the tenant's data sources are in Forge storage
// now: from here on they are read and written there.
func (s *Store) MarkMigrated(ctx context.Context, tenantID string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE installations SET forge_migrated_at = $2 WHERE tenant_id = $1 AND forge_migrated_at IS NULL`,
			tenantID, tx.Now())
		return err
	})
}

// PendingMigration lists active tenants that have been reached through
// Forge (a system token is on record) whose data sources are still in
// Connect app properties.
func (s *Store) PendingMigration(ctx context.Context) ([]Installation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM installations WHERE state = 'active' AND installation_id <> ''
		AND forge_migrated_at IS NULL AND forge_system_token IS NOT NULL ORDER BY created_at, tenant_id`)
}

// Forge lists the installations that Forge has reached, in any state but
// pending deletion.
func (s *Store) Forge(ctx context.Context) ([]Installation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM installations WHERE installation_id <> '' AND forge_contact_at IS NOT NULL
		AND state <> 'pending_deletion' ORDER BY created_at, tenant_id`)
}

func (s *Store) list(ctx context.Context, q string, args ...any) ([]Installation, error) {
	rows, err := s.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Installation
	for rows.Next() {
		in, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// OnForge reports whether the tenant is served through Forge: it has a
// Forge installationId and Forge has reached Ferry for it. Feeds then read
// Jira through offline impersonation, never through Connect.
func (in Installation) OnForge() bool { return in.InstallationID != "" && !in.SystemTokenAt.IsZero() }

// SourcesInForge reports whether the tenant's data sources live in Forge
// storage (a Forge-only tenant, or a migrated one).
func (in Installation) SourcesInForge() bool { return in.OnForge() && !in.ForgeMigratedAt.IsZero() }
