package forge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"ferry/internal/apperr"
	"ferry/internal/reqinfo"
	"ferry/internal/tenant"
)

// What Forge invokes, and how each answers. Forge reads every answer as
// JSON (Content-Type: application/json) and treats 3xx as an error; events
// and triggers must be answered within 5 s (their work is queued), UI calls
// within 25 s. A refused FIT is answered 401, which Forge retries for
// events with retryReason INVALID_FORGE_INVOCATION_TOKEN; a key set that
// cannot be read now is 503 with Retry-After.

// maxEventBody bounds a lifecycle or trigger payload; real ones are small.
const maxEventBody = 64 << 10

type ctxKey struct{}

// Call is a verified Forge invocation with the tenant it belongs to.
type Call struct {
	Invocation   *Invocation
	Installation tenant.Installation
	Pseudonym    string // of the invocation's principal; "" when there is none
}

// From returns the verified call of a request behind Require…
func From(ctx context.Context) (Call, bool) {
	c, ok := ctx.Value(ctxKey{}).(Call)
	return c, ok
}

// WithCall returns ctx carrying c (tests of handlers behind the middleware).
func WithCall(ctx context.Context, c Call) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// jsonWriter answers Forge in application/json, which it requires of every
// answer: problem+json bodies keep their shape under that type.
type jsonWriter struct{ http.ResponseWriter }

func (w jsonWriter) WriteHeader(code int) {
	if ct := w.Header().Get("Content-Type"); ct == "" || strings.HasPrefix(ct, "application/problem+json") {
		w.Header().Set("Content-Type", "application/json")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w jsonWriter) Write(b []byte) (int, error) {
	if w.Header().Get("Content-Type") == "" || strings.HasPrefix(w.Header().Get("Content-Type"), "application/problem+json") {
		w.Header().Set("Content-Type", "application/json")
	}
	return w.ResponseWriter.Write(b)
}

func (w jsonWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// fail answers a refused or failed invocation.
func (f *Remote) fail(w http.ResponseWriter, r *http.Request, err error) {
	w = jsonWriter{w}
	if rl := new(*refreshLater); errors.As(err, rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil((*rl).after.Seconds()))))
	}
	apperr.Write(w, r, f.log, authError(err))
}

// authError maps verification failures to client errors whose message names
// the check, never the token.
func authError(err error) error {
	unauthorized := func(msg string) error { return apperr.Wrap(err, apperr.EUNAUTHORIZED, "%s", msg) }
	switch {
	case errors.Is(err, ErrMissingToken):
		return unauthorized("the request carries no Forge Invocation Token (Authorization: Bearer)")
	case errors.Is(err, ErrTraceHeaders):
		return unauthorized("the x-b3-traceid and x-b3-spanid headers Forge sends are missing or malformed")
	case errors.Is(err, ErrMalformed):
		return unauthorized("the Forge Invocation Token is malformed")
	case errors.Is(err, ErrAlgorithm):
		return unauthorized("the Forge Invocation Token must be signed with RS256")
	case errors.Is(err, ErrUnknownKeyID):
		return unauthorized("the Forge Invocation Token's key id (kid) is not in Forge's key set")
	case errors.Is(err, ErrSignature):
		return unauthorized("the Forge Invocation Token's signature is invalid")
	case errors.Is(err, ErrIssuer):
		return unauthorized("the Forge Invocation Token's issuer is not forge/invocation-token")
	case errors.Is(err, ErrAudience):
		return unauthorized("the Forge Invocation Token is not for this app (aud)")
	case errors.Is(err, ErrExpired):
		return unauthorized("the Forge Invocation Token has expired or is not yet valid")
	case errors.Is(err, ErrClaims):
		return unauthorized("the Forge Invocation Token's claims are incomplete or malformed")
	case errors.Is(err, ErrReplayed), errors.Is(err, tenant.ErrReplayed):
		return unauthorized("this Forge Invocation Token was used before; each works once")
	case errors.Is(err, ErrWrongEndpoint):
		return unauthorized("this Forge Invocation Token is not for this endpoint")
	case errors.As(err, new(*refreshLater)):
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "the Forge Invocation Token's key id is not known yet; Forge's key set is read again shortly")
	case errors.Is(err, errKeysUnavailable):
		return apperr.Wrap(err, apperr.EUNAVAILABLE, "Forge's key set could not be read; retry later")
	}
	return err
}

// contact verifies the request's FIT and records the invocation on its
// tenant (tenant.Store.Contact), with the jti used up in the same
// transaction.
func (f *Remote) contact(r *http.Request, ui bool) (Call, error) {
	inv, err := f.verifier.Verify(r.Context(), r)
	if err != nil {
		invocations.WithLabelValues(routeLabel(ui), outcomeOf(err)).Inc()
		return Call{}, err
	}
	return f.record(r, inv, ui)
}

// record keeps what a verified invocation says (see contact).
func (f *Remote) record(r *http.Request, inv *Invocation, ui bool) (Call, error) {
	ctx := r.Context()
	if ui && inv.Principal == "" {
		invocations.WithLabelValues(routeLabel(ui), "wrong_endpoint").Inc()
		return Call{}, ErrWrongEndpoint
	}
	c := tenant.ForgeContact{InstallationID: inv.InstallationID, CloudID: inv.CloudID, APIBaseURL: inv.APIBaseURL,
		SiteURL: inv.SiteURL, WorkspaceARI: inv.WorkspaceARI, AddonKey: f.o.AddonKey, License: inv.License, Nonce: inv.Nonce}
	if inv.SystemToken != "" {
		minTTL := SystemTokenMinTTL
		if r.URL.Path == RouteTrigger {
			minTTL = TriggerTokenMinTTL
		}
		if exp := tokenExpiry(inv.SystemToken, f.now(), minTTL); exp.After(f.now()) {
			c.SystemToken, c.SystemTokenExpires = []byte(inv.SystemToken), exp
		}
	}
	inst, created, err := f.o.Tenants.Contact(ctx, c)
	if err != nil {
		invocations.WithLabelValues(routeLabel(ui), outcomeOf(err)).Inc()
		return Call{}, err
	}
	invocations.WithLabelValues(routeLabel(ui), "ok").Inc()
	if created {
		f.log.InfoContext(ctx, "forge installation recorded", "tenant", inst.TenantID)
	}
	if !inst.SystemTokenExpires.IsZero() {
		systemTokenAge.WithLabelValues(inst.TenantID).Set(f.now().Sub(inst.SystemTokenAt).Seconds())
	}
	if inst.Connect && inst.ForgeMigratedAt.IsZero() && inst.OnForge() {
		f.queueMigration(ctx)
	}
	call := Call{Invocation: inv, Installation: inst}
	reqinfo.SetIdentity(ctx, inst.TenantID, "")
	return call, nil
}

func routeLabel(ui bool) string {
	if ui {
		return "ui"
	}
	return "event"
}

// outcomeOf names a refusal for the metric: which check, never the token.
func outcomeOf(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{{ErrMissingToken, "missing_token"}, {ErrTraceHeaders, "trace_headers"}, {ErrMalformed, "malformed"},
		{ErrAlgorithm, "algorithm"}, {ErrUnknownKeyID, "unknown_kid"}, {ErrSignature, "signature"},
		{ErrIssuer, "issuer"}, {ErrAudience, "audience"}, {ErrExpired, "expired"}, {ErrClaims, "claims"},
		{tenant.ErrReplayed, "replayed"}, {tenant.ErrUninstalled, "uninstalled"}, {errKeysUnavailable, "keys_unavailable"}} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	if errors.As(err, new(*refreshLater)) {
		return "kid_refresh_limited"
	}
	return "error"
}

// queueMigration asks the job queue to move a migrated site's data
// sources now; the periodic run catches up if it cannot.
func (f *Remote) queueMigration(ctx context.Context) {
	f.mu.Lock()
	kick := f.kick
	f.mu.Unlock()
	if kick != nil {
		if err := kick(context.WithoutCancel(ctx)); err != nil {
			f.log.WarnContext(ctx, "forge migration not queued; the periodic run will do it", "err", err)
		}
	}
}

// RequireUI authenticates a Custom UI invokeRemote call: a verified FIT
// with a principal, for an active installation. The handler finds the call
// with From; the caller's accountId is held for reporting before its
// pseudonym is logged, as on Connect.
func (f *Remote) RequireUI(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		call, err := f.contact(r, true)
		if errors.Is(err, tenant.ErrUninstalled) {
			apperr.Write(jsonWriter{w}, r, f.log, apperr.New(apperr.EFORBIDDEN, "Ferry BI Connector was uninstalled from this Jira site and its data is scheduled for deletion. Reinstall the app to use it again."))
			return
		}
		if err != nil {
			f.fail(w, r, err)
			return
		}
		switch call.Installation.State {
		case tenant.Active:
		case tenant.Disabled:
			apperr.Write(jsonWriter{w}, r, f.log, apperr.New(apperr.EFORBIDDEN, "Ferry BI Connector is disabled on this Jira site. A Jira administrator can enable it under Apps → Manage apps."))
			return
		}
		inst := call.Installation
		pseudonym, err := f.o.Keys.Pseudonym(ctx, inst.TenantID, call.Invocation.Principal)
		if err != nil {
			apperr.Write(jsonWriter{w}, r, f.log, apperr.Wrap(err, apperr.EINTERNAL, "user pseudonym unavailable"))
			return
		}
		if f.o.Accounts != nil {
			if err := f.o.Accounts.Hold(ctx, inst.TenantID, call.Invocation.Principal); err != nil {
				apperr.Write(jsonWriter{w}, r, f.log, apperr.Wrap(err, apperr.EINTERNAL, "user account could not be recorded"))
				return
			}
		}
		call.Pseudonym = pseudonym
		reqinfo.SetIdentity(ctx, inst.TenantID, pseudonym)
		next.ServeHTTP(jsonWriter{w}, r.WithContext(WithCall(ctx, call)))
	})
}

// ok answers an event Forge may consider delivered.
func ok(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "{}")
}

// lifecyclePayload is what Ferry reads of a lifecycle event; the rest
// (installerAccountId, app name …) is ignored and never stored.
type lifecyclePayload struct {
	ID        string `json:"id"`
	EventType string `json:"eventType"`
}

// HandleLifecycle receives avi:forge:installed:app and avi:forge:upgraded:app:
// the tenant is found or made and the system token kept in the FIT's
// transaction; moving a migrated site's data sources is queued, so the
// answer comes within Forge's 5 seconds.
func (f *Remote) HandleLifecycle() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p lifecyclePayload
		b, err := io.ReadAll(io.LimitReader(r.Body, maxEventBody+1))
		if err != nil || len(b) > maxEventBody {
			apperr.Write(jsonWriter{w}, r, f.log, apperr.New(apperr.ETOOLARGE, "lifecycle payload larger than %d bytes", maxEventBody))
			return
		}
		inv, err := f.verifier.Verify(r.Context(), r)
		if err != nil {
			invocations.WithLabelValues("event", outcomeOf(err)).Inc()
			f.fail(w, r, err)
			return
		}
		if err := json.Unmarshal(b, &p); err != nil {
			apperr.Write(jsonWriter{w}, r, f.log, apperr.Invalid("body", "the lifecycle payload is not a JSON object"))
			return
		}
		switch p.EventType {
		case "", "avi:forge:installed:app", "avi:forge:upgraded:app":
		default:
			apperr.Write(jsonWriter{w}, r, f.log, apperr.Invalid("eventType", "eventType %q is not a lifecycle event this endpoint takes", p.EventType))
			return
		}
		// The payload names the installation too; the FIT decides, and a
		// payload naming another one is refused before anything is used up.
		if p.ID != "" && p.ID != inv.InstallationID {
			apperr.Write(jsonWriter{w}, r, f.log, apperr.Invalid("id", "the payload's installation is not the one the Forge Invocation Token names"))
			return
		}
		call, err := f.record(r, inv, false)
		if errors.Is(err, tenant.ErrUninstalled) {
			ok(w) // nothing to do for an installation that is gone
			return
		}
		if err != nil {
			f.fail(w, r, err)
			return
		}
		f.log.InfoContext(r.Context(), "forge lifecycle", "event", p.EventType, "tenant", call.Installation.TenantID)
		ok(w)
	})
}

// HandleTrigger receives the hourly scheduled trigger: its whole purpose is
// the fresh app system token (it lives at least two hours) and licence it
// brings, kept by contact.
func (f *Remote) HandleTrigger() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := f.contact(r, false)
		if errors.Is(err, tenant.ErrUninstalled) {
			ok(w)
			return
		}
		if err != nil {
			f.fail(w, r, err)
			return
		}
		ok(w)
	})
}

// HandlePreUninstall receives preUninstall: the tenant is marked for
// deletion exactly as a Connect uninstall marks it (tenant.Store.Uninstalled,
// purged after the grace period), with the FIT's jti used up in the same
// transaction. An installation Ferry never saw is answered 200: there is
// nothing to delete.
func (f *Remote) HandlePreUninstall() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		inv, err := f.verifier.Verify(ctx, r)
		if err != nil {
			invocations.WithLabelValues("uninstall", outcomeOf(err)).Inc()
			f.fail(w, r, err)
			return
		}
		inst, err := f.o.Tenants.ByInstallationID(ctx, inv.InstallationID)
		if errors.Is(err, tenant.ErrNotFound) {
			if err := f.o.Tenants.Consume(ctx, inv.Nonce); err != nil {
				f.fail(w, r, err)
				return
			}
			ok(w)
			return
		}
		if err == nil {
			reqinfo.SetIdentity(ctx, inst.TenantID, "")
			_, err = f.o.Tenants.Uninstalled(ctx, inst.TenantID, inv.Nonce)
		}
		if err != nil {
			invocations.WithLabelValues("uninstall", outcomeOf(err)).Inc()
			f.fail(w, r, err)
			return
		}
		invocations.WithLabelValues("uninstall", "ok").Inc()
		f.Forget(inst.TenantID)
		systemTokenAge.DeleteLabelValues(inst.TenantID)
		f.log.InfoContext(ctx, "forge preUninstall: tenant marked for deletion", "tenant", inst.TenantID)
		ok(w)
	})
}
