// Package tenant owns the installations table: the Account Data Ferry keeps
// about each Jira site that installed the app (statement: "Account Data: ...
// only data ... required for license validation, contract administration,
// and communication with the customer instance", P2), and the User-Account
// Data of the installation (P6): the shared secret, stored only encrypted
// under the tenant key, and the installing user's accountId, stored only as a
// keyed pseudonym.
//
// What is kept is an explicit allowlist (Install); nothing else from a Connect
// payload reaches the database. A tenant id is a random id, not Atlassian's
// clientKey, so a tenant can be crypto-shredded on its own.
//
// Lifecycle changes are single conditional UPDATE statements, so events that
// arrive in parallel or out of order (disabled and uninstalled milliseconds
// apart) end in the same state: uninstalled wins over disabled, and only a new
// install revives a tenant pending deletion.
//
// Because Connect signs a lifecycle token but not the callback's body, each
// token works once (seen.go), and a reinstall may not change what identifies
// the site: its host (except by a site rename, which keeps the shared
// secret), its oauthClientId or its installationId (see Install).
package tenant

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// State is where an installation is in its lifecycle.
type State string

const (
	Active          State = "active"
	Disabled        State = "disabled"         // the admin disabled the app in Jira
	PendingDeletion State = "pending_deletion" // uninstalled; purged after the grace period
)

// ErrNotFound: no installation matches.
var ErrNotFound = errors.New("tenant: installation not found")

// Installation is the Account Data of one Jira site. It never holds the
// shared secret; ask the Store for it when signing.
type Installation struct {
	TenantID                 string
	AddonKey                 string
	ProductType              string
	ClientKey                string
	BaseURL                  string
	DisplayURL               string
	Description              string
	ServiceEntitlementNumber string
	EntitlementID            string
	EntitlementNumber        string
	OAuthClientID            string
	InstallationID           string
	InstalledBy              string // pseudonym of the installing user's accountId; "" if none was sent
	State                    State
	CreatedAt                time.Time // first install
	InstalledAt              time.Time // latest install
	UpdatedAt                time.Time
	DisabledAt               time.Time // zero unless disabled
	UninstalledAt            time.Time // zero unless pending deletion: when it was marked

	// End of the subscription (deletion.go): when a tenant pending deletion
	// is purged, what marked it, and an operator's reason and name.
	PurgeAfter           time.Time // zero unless pending deletion
	DeletionCause        Cause
	DeletionReason       string
	DeletionBy           string
	LicenseInactiveSince time.Time // zero while the licence is active (or unknown)

	// Forge (forge.go): the site's cloudId, where product calls go
	// (app.apiBaseUrl), the context ARI of offline impersonation, whether
	// the installation has a Connect identity (clientKey and shared
	// secret), and what the latest Forge invocations said.
	CloudID            string
	APIBaseURL         string
	WorkspaceARI       string
	Connect            bool      // installed through Connect: clientKey and shared secret are real
	ForgeLicense       License   // app.license of the latest invocation; "" if none was seen
	ForgeLicenseAt     time.Time // when that licence was seen
	ForgeContactAt     time.Time // latest verified Forge invocation; zero if none
	ForgeMigratedAt    time.Time // data sources moved from Connect app properties to Forge storage
	SystemTokenExpires time.Time // the stored app system token's expiry; zero if none
	SystemTokenAt      time.Time // when it arrived
}

// Install is the verified content of an installed callback: the allowlist of
// what Ferry keeps. Fields not named here are never stored.
type Install struct {
	AddonKey                 string
	ProductType              string
	ClientKey                string
	BaseURL                  string
	DisplayURL               string
	Description              string
	ServiceEntitlementNumber string
	EntitlementID            string
	EntitlementNumber        string
	OAuthClientID            string
	InstallationID           string
	CloudID                  string // the site's cloudId, when the payload names it
	SharedSecret             []byte // encrypted before it is written
	InstallerAccountID       string // pseudonymised before it is written
	Nonce                    Nonce  // the installed callback's token, used up with the write
}

// Store reads and writes installations.
type Store struct {
	db   *store.DB
	keys *keys.Ring

	policy   Policy                                           // when tenants are marked and purged (deletion.go)
	purgeNow func(ctx context.Context, tenantID string) error // set by a Purger: finishes an overdue tenant
	accounts AccountHolder                                    // set by SetAccountHolder: the installer's account
}

// NewStore returns the installations store with the default Policy.
func NewStore(db *store.DB, ring *keys.Ring) *Store {
	return &Store{db: db, keys: ring, policy: DefaultPolicy()}
}

// secretAD binds the shared-secret ciphertext to its table, column and row,
// so a ciphertext copied to another row or tenant does not decrypt.
func secretAD(tenantID string) []byte {
	return []byte("installations/shared_secret/" + tenantID)
}

func newTenantID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "ten_" + hex.EncodeToString(b)
}

// SiteHost is the lower-case host name (no port) of a site URL.
func SiteHost(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// ErrIdentityChanged: a reinstall tried to change what identifies the site
// (its host, oauthClientId or installationId). It is wrapped in an
// *apperr.Error (409) naming the field.
var ErrIdentityChanged = errors.New("tenant: a reinstall may not change what identifies the site")

// errChanged: the row changed between reading it and writing it; read again.
var errChanged = errors.New("tenant: installation changed concurrently")

// Install records an installed callback. The first install of a clientKey
// creates the tenant and its keyset; a reinstall replaces the shared secret
// (Atlassian sends a new one every time) and revives a tenant pending
// deletion. created reports whether the tenant is new.
//
// A reinstall may not change what identifies the site, whatever its payload
// says (the payload is not signed):
//   - the host (scheme, host name and port of baseUrl) stays, except for a
//     site rename: Atlassian renames a site by sending installed with the new
//     baseUrl and everything else unchanged, so a new host is accepted only
//     with the shared secret Ferry already holds, which nobody but Atlassian
//     and Ferry knows;
//   - oauthClientId and installationId, once known, stay. A payload without
//     one keeps the stored value, and an installation without an
//     installationId may gain one (a Connect app moving to Forge).
//
// in.Nonce, when set, is used up in the same transaction as the write, so a
// refused or failed install leaves it unused and a replay changes nothing.
func (s *Store) Install(ctx context.Context, in Install) (inst Installation, created bool, err error) {
	if in.ClientKey == "" || len(in.SharedSecret) == 0 || in.BaseURL == "" {
		return inst, false, errors.New("tenant: install needs clientKey, sharedSecret and baseUrl")
	}
	// A few attempts: a concurrent first install of the same site may win the
	// insert, or a concurrent reinstall change the row; then this one is
	// checked again against what is there now.
	for attempt := 0; attempt < 4; attempt++ {
		// A replay is named as such before its body is looked at or a keyset
		// is made for it; the transaction below is what decides.
		if err := s.unused(ctx, in.Nonce); err != nil {
			return inst, false, err
		}
		existing, storedCT, err := s.current(ctx, in.ClientKey)
		if err == nil || errors.Is(err, ErrNotFound) {
			// Before a keyset is made for a new tenant: a refusal leaves nothing.
			if ferr := s.installationFree(ctx, in.InstallationID, existing.TenantID); ferr != nil {
				return inst, false, ferr
			}
		}
		tenantID := existing.TenantID
		oauth, installation := in.OAuthClientID, in.InstallationID
		switch {
		case errors.Is(err, ErrNotFound):
			tenantID = newTenantID()
			if err := s.keys.EnsureTenant(ctx, tenantID); err != nil {
				return inst, false, fmt.Errorf("tenant keys: %w", err)
			}
		case err != nil:
			return inst, false, err
		case s.overdue(existing):
			// Past its purge_after the tenant's data is due for deletion: a
			// reinstall starts clean, after the purge of what is there.
			if err := s.purgeOverdue(ctx, existing.TenantID); err != nil {
				return inst, false, err
			}
			continue
		default:
			if err := s.checkReinstall(ctx, existing, storedCT, in); err != nil {
				return inst, false, err
			}
			if oauth == "" {
				oauth = existing.OAuthClientID
			}
			if installation == "" {
				installation = existing.InstallationID
			}
		}
		ct, err := s.keys.Encrypt(ctx, tenantID, secretAD(tenantID), in.SharedSecret)
		if err != nil {
			return inst, false, fmt.Errorf("encrypt shared secret: %w", err)
		}
		installer := ""
		if in.InstallerAccountID != "" {
			if installer, err = s.keys.Pseudonym(ctx, tenantID, in.InstallerAccountID); err != nil {
				return inst, false, err
			}
			// Before the write: whoever Ferry keeps a pseudonym of must be
			// reportable to Atlassian (privacy.Register).
			if s.accounts != nil {
				if err := s.accounts.Hold(ctx, tenantID, in.InstallerAccountID); err != nil {
					return inst, false, fmt.Errorf("hold installer account: %w", err)
				}
			}
		}
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			if err := use(ctx, tx, in.Nonce); err != nil {
				return err
			}
			var res sql.Result
			var err error
			if existing.TenantID == "" {
				res, err = tx.ExecContext(ctx, `INSERT INTO installations (tenant_id, addon_key, product_type, client_key,
					base_url, site_host, display_url, description, sen, entitlement_id, entitlement_number,
					oauth_client_id, installation_id, shared_secret, installed_by, state, created_at, installed_at, updated_at, cloud_id)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'active', $16, $16, $16, $17)
					ON CONFLICT (client_key) DO NOTHING`,
					tenantID, in.AddonKey, in.ProductType, in.ClientKey, in.BaseURL, SiteHost(in.BaseURL), in.DisplayURL,
					in.Description, in.ServiceEntitlementNumber, in.EntitlementID, in.EntitlementNumber,
					oauth, installation, ct, installer, tx.Now(), in.CloudID)
			} else {
				// A reinstall keeps a disabled app disabled (Jira sends enabled
				// separately) but revives one pending deletion, with its
				// data, if its purge_after has not come. The WHERE clause
				// repeats what checkReinstall saw, so a concurrent change
				// sends this install round again.
				res, err = tx.ExecContext(ctx, `UPDATE installations SET addon_key = $2, product_type = $3,
					base_url = $4, site_host = $5, display_url = $6, description = $7, sen = $8, entitlement_id = $9,
					entitlement_number = $10, oauth_client_id = $11, installation_id = $12, shared_secret = $13,
					installed_by = CASE WHEN $14 = '' THEN installed_by ELSE $14 END,
					state = CASE WHEN state = 'pending_deletion' THEN 'active' ELSE state END,
					uninstalled_at = NULL, purge_after = NULL, deletion_cause = '', deletion_reason = '', deletion_by = '',
					license_inactive_since = NULL, installed_at = $15, updated_at = $15,
					cloud_id = CASE WHEN cloud_id = '' THEN $21 ELSE cloud_id END
					WHERE tenant_id = $1 AND client_key = $16 AND base_url = $17 AND oauth_client_id = $18
					AND installation_id = $19 AND shared_secret = $20
					AND (state <> 'pending_deletion' OR purge_after IS NULL OR purge_after > $15)`,
					tenantID, in.AddonKey, in.ProductType, in.BaseURL, SiteHost(in.BaseURL), in.DisplayURL,
					in.Description, in.ServiceEntitlementNumber, in.EntitlementID, in.EntitlementNumber,
					oauth, installation, ct, installer, tx.Now(), in.ClientKey,
					existing.BaseURL, existing.OAuthClientID, existing.InstallationID, storedCT, in.CloudID)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n != 1 {
				return errChanged // rolls back, the nonce included
			}
			return nil
		})
		switch {
		case err == nil:
			inst, err = s.ByID(ctx, tenantID)
			return inst, existing.TenantID == "", err
		case errors.Is(err, errChanged):
			if existing.TenantID == "" {
				// Lost the race: the keyset made for the loser id is never used.
				_ = s.keys.Shred(ctx, tenantID)
			}
		case errors.Is(err, ErrReplayed):
			if existing.TenantID == "" {
				_ = s.keys.Shred(ctx, tenantID)
			}
			return inst, false, ErrReplayed
		default:
			return inst, false, fmt.Errorf("save installation: %w", err)
		}
	}
	return inst, false, errors.New("tenant: installation changed concurrently; retry")
}

// current reads the installation of clientKey with its shared-secret
// ciphertext.
func (s *Store) current(ctx context.Context, clientKey string) (Installation, []byte, error) {
	var ct []byte
	inst, err := scan(s.db.SQL.QueryRowContext(ctx, `SELECT `+columns+`, shared_secret FROM installations WHERE client_key = $1 AND `+connectRow, clientKey), &ct)
	return inst, ct, err
}

// checkReinstall refuses a reinstall that would change what identifies the
// site (see Install).
func (s *Store) checkReinstall(ctx context.Context, cur Installation, storedCT []byte, in Install) error {
	if siteOrigin(in.BaseURL) != siteOrigin(cur.BaseURL) {
		stored, err := s.keys.Decrypt(ctx, cur.TenantID, secretAD(cur.TenantID), storedCT)
		if err != nil && !errors.Is(err, keys.ErrShredded) {
			return fmt.Errorf("shared secret: %w", err)
		}
		if err != nil || !hmac.Equal(stored, in.SharedSecret) {
			return &apperr.Error{Code: apperr.ECONFLICT, Field: "baseUrl", Err: ErrIdentityChanged,
				Message: "a reinstall may not move this site's installation to another host; a site rename keeps the shared secret, and this payload does not"}
		}
	}
	if cur.OAuthClientID != "" && in.OAuthClientID != "" && in.OAuthClientID != cur.OAuthClientID {
		return &apperr.Error{Code: apperr.ECONFLICT, Field: "oauthClientId", Err: ErrIdentityChanged,
			Message: "a reinstall may not change this site's oauthClientId"}
	}
	if cur.InstallationID != "" && in.InstallationID != "" && in.InstallationID != cur.InstallationID {
		return &apperr.Error{Code: apperr.ECONFLICT, Field: "installationId", Err: ErrIdentityChanged,
			Message: "a reinstall may not change this site's installationId (an installation without one may gain it)"}
	}
	return nil
}

// installationFree refuses an installationId that already belongs to
// another tenant: one Forge installation is one site, one tenant.
func (s *Store) installationFree(ctx context.Context, installationID, tenantID string) error {
	if installationID == "" {
		return nil
	}
	var owner string
	err := s.db.SQL.QueryRowContext(ctx, `SELECT tenant_id FROM installations WHERE installation_id = $1`, installationID).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	case owner != tenantID:
		return &apperr.Error{Code: apperr.ECONFLICT, Field: "installationId", Err: ErrIdentityChanged,
			Message: "this Forge installationId already belongs to another installation"}
	}
	return nil
}

// siteOrigin is scheme://host[:port] of a site URL, lower case, without the
// scheme's default port: what a site rename changes and nothing else may.
func siteOrigin(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port)
	}
	return scheme + "://" + host
}

// Event is a lifecycle change Jira announces for an installed app.
type Event string

const (
	EventEnabled     Event = "enabled"
	EventDisabled    Event = "disabled"
	EventUninstalled Event = "uninstalled"
)

// eventSQL is the single conditional UPDATE of each event: uninstalled wins
// over disabled, only a new install revives a tenant pending deletion, and
// repeating an uninstall keeps the first time.
var eventSQL = map[Event]string{
	EventEnabled: `UPDATE installations SET state = 'active', disabled_at = NULL, updated_at = $2
		WHERE tenant_id = $1 AND state = 'disabled'`,
	EventDisabled: `UPDATE installations SET state = 'disabled', disabled_at = $2, updated_at = $2
		WHERE tenant_id = $1 AND state = 'active'`,
	EventUninstalled: `UPDATE installations SET state = 'pending_deletion', uninstalled_at = $2, updated_at = $2,
		purge_after = $3, deletion_cause = 'uninstalled'
		WHERE tenant_id = $1 AND state <> 'pending_deletion'`,
}

// Record applies a lifecycle event that arrived with the single-use token n,
// using n up in the same transaction (ErrReplayed, and nothing changes, if
// it was used before). changed reports whether the state changed.
func (s *Store) Record(ctx context.Context, tenantID string, ev Event, n Nonce) (changed bool, err error) {
	q, ok := eventSQL[ev]
	if !ok {
		return false, fmt.Errorf("tenant: unknown lifecycle event %q", ev)
	}
	var k int64
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		if err := use(ctx, tx, n); err != nil {
			return err
		}
		args := []any{tenantID, tx.Now()}
		if ev == EventUninstalled {
			args = append(args, tx.Now().Add(s.policy.Grace)) // purge_after
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		k, err = res.RowsAffected()
		return err
	})
	return k > 0, err
}

// Uninstalled marks the tenant pending deletion, to be purged after the
// grace period (Policy.Grace), using up the single-use token n with the
// change. Connect's uninstalled callback and Forge's preUninstall event both
// end here; repeating it keeps the first time.
func (s *Store) Uninstalled(ctx context.Context, tenantID string, n Nonce) (changed bool, err error) {
	return s.Record(ctx, tenantID, EventUninstalled, n)
}

// Enable marks a disabled installation active. It never revives a tenant
// pending deletion; changed reports whether anything changed.
func (s *Store) Enable(ctx context.Context, tenantID string) (changed bool, err error) {
	return s.Record(ctx, tenantID, EventEnabled, Nonce{})
}

// Disable marks an active installation disabled; on a tenant pending deletion
// it does nothing, so uninstalled wins whichever event arrives last.
func (s *Store) Disable(ctx context.Context, tenantID string) (changed bool, err error) {
	return s.Record(ctx, tenantID, EventDisabled, Nonce{})
}

// Uninstall marks the tenant pending deletion with the time; the tenant.purge
// job purges it after the grace period. Repeating it keeps the first time.
func (s *Store) Uninstall(ctx context.Context, tenantID string) (changed bool, err error) {
	return s.Record(ctx, tenantID, EventUninstalled, Nonce{})
}

// SharedSecret decrypts the tenant's current shared secret. Callers keep it
// in memory only for the signature at hand.
func (s *Store) SharedSecret(ctx context.Context, tenantID string) ([]byte, error) {
	var ct []byte
	err := s.db.SQL.QueryRowContext(ctx, `SELECT shared_secret FROM installations WHERE tenant_id = $1`, tenantID).Scan(&ct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s.keys.Decrypt(ctx, tenantID, secretAD(tenantID), ct)
}

const columns = `tenant_id, addon_key, product_type, client_key, base_url, display_url, description, sen,
	entitlement_id, entitlement_number, oauth_client_id, installation_id, installed_by, state,
	created_at, installed_at, updated_at, disabled_at, uninstalled_at,
	purge_after, deletion_cause, deletion_reason, deletion_by, license_inactive_since,
	cloud_id, api_base_url, workspace_ari, CASE WHEN length(shared_secret) > 0 THEN 1 ELSE 0 END,
	forge_license, forge_license_at, forge_contact_at, forge_migrated_at, forge_system_token_expires, forge_system_token_at`

// scan reads the columns, then into extra any columns the query adds.
func scan(row interface{ Scan(...any) error }, extra ...any) (Installation, error) {
	var in Installation
	var disabled, uninstalled, purgeAfter, licenseInactive sql.NullTime
	var licAt, contactAt, migratedAt, tokExp, tokAt sql.NullTime
	var state, cause, lic string
	var connect int
	err := row.Scan(append([]any{&in.TenantID, &in.AddonKey, &in.ProductType, &in.ClientKey, &in.BaseURL, &in.DisplayURL,
		&in.Description, &in.ServiceEntitlementNumber, &in.EntitlementID, &in.EntitlementNumber, &in.OAuthClientID,
		&in.InstallationID, &in.InstalledBy, &state, &in.CreatedAt, &in.InstalledAt, &in.UpdatedAt, &disabled, &uninstalled,
		&purgeAfter, &cause, &in.DeletionReason, &in.DeletionBy, &licenseInactive,
		&in.CloudID, &in.APIBaseURL, &in.WorkspaceARI, &connect, &lic, &licAt, &contactAt, &migratedAt, &tokExp, &tokAt}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return in, ErrNotFound
	}
	if err != nil {
		return in, err
	}
	in.State = State(state)
	in.CreatedAt, in.InstalledAt, in.UpdatedAt = in.CreatedAt.UTC(), in.InstalledAt.UTC(), in.UpdatedAt.UTC()
	if disabled.Valid {
		in.DisabledAt = disabled.Time.UTC()
	}
	if uninstalled.Valid {
		in.UninstalledAt = uninstalled.Time.UTC()
	}
	if purgeAfter.Valid {
		in.PurgeAfter = purgeAfter.Time.UTC()
	}
	if licenseInactive.Valid {
		in.LicenseInactiveSince = licenseInactive.Time.UTC()
	}
	in.DeletionCause = Cause(cause)
	in.Connect, in.ForgeLicense = connect == 1, License(lic)
	for _, t := range []struct {
		src sql.NullTime
		dst *time.Time
	}{{licAt, &in.ForgeLicenseAt}, {contactAt, &in.ForgeContactAt}, {migratedAt, &in.ForgeMigratedAt}, {tokExp, &in.SystemTokenExpires}, {tokAt, &in.SystemTokenAt}} {
		if t.src.Valid {
			*t.dst = t.src.Time.UTC()
		}
	}
	return in, nil
}

// ByID returns the installation of a tenant.
func (s *Store) ByID(ctx context.Context, tenantID string) (Installation, error) {
	return scan(s.db.SQL.QueryRowContext(ctx, `SELECT `+columns+` FROM installations WHERE tenant_id = $1`, tenantID))
}

// ByClientKey returns the installation of a Jira site by Atlassian's
// Connect clientKey. A Forge-only installation has none.
func (s *Store) ByClientKey(ctx context.Context, clientKey string) (Installation, error) {
	return scan(s.db.SQL.QueryRowContext(ctx, `SELECT `+columns+` FROM installations WHERE client_key = $1 AND `+connectRow, clientKey))
}

// connectRow restricts a query to installations with a Connect identity:
// a Forge-only row (client_key is its installationId, no shared secret) is
// never found by a clientKey, so no Connect JWT can name it.
const connectRow = `length(shared_secret) > 0`

// Active lists the installations in state active, oldest first.
func (s *Store) Active(ctx context.Context) ([]Installation, error) {
	return s.list(ctx, `SELECT `+columns+` FROM installations WHERE state = 'active' ORDER BY created_at, tenant_id`)
}

// KnownSite reports whether host (with or without a port) is the site of an
// installation that is not pending deletion. It is what the egress gate asks
// before Ferry calls a Jira site.
func (s *Store) KnownSite(ctx context.Context, host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	var one int
	err := s.db.SQL.QueryRowContext(ctx, `SELECT 1 FROM installations WHERE site_host = $1 AND state <> 'pending_deletion' LIMIT 1`,
		strings.ToLower(host)).Scan(&one)
	return err == nil
}
