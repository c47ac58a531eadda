package jirasim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Delivering invocations to the remote: lifecycle events and scheduled
// triggers (POST to the endpoint's route, 5 s, retried 4 times 60 s apart
// with payload.retryContext), preUninstall (55 s, never retried, never
// blocking the uninstall) and UI invokeRemote calls (25 s, no retries; 3xx
// is an error).

// forgeClient calls remotes: no redirects (3xx is an error), timeouts from
// the call's context.
var forgeClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// DeliveryError is a remote that never accepted an invocation.
type DeliveryError struct {
	Kind, Event string
	Attempts    int
	Status      int    // the last HTTP status; 0 when there was none
	Reason      string // the last retry reason
}

func (e *DeliveryError) Error() string {
	return fmt.Sprintf("jirasim: the remote did not accept %s %s after %d attempt(s): %s (HTTP %d)", e.Kind, e.Event, e.Attempts, e.Reason, e.Status)
}

type delivery struct {
	kind     string // event, scheduledTrigger, preUninstall
	event    string // event name or trigger key
	endpoint string
	body     map[string]any
}

// Retry reasons as Atlassian names them in payload.retryContext.retryReason.
const (
	retryInvalidResponse = "INVALID_REMOTE_INVOCATION_ERROR"
	retryTimeout         = "TIMEOUT_ERROR"
	retryInvalidFIT      = "INVALID_FORGE_INVOCATION_TOKEN"
)

// deliver sends d, retrying events and scheduled triggers; it returns the
// remote's last status.
func (s *Sim) deliver(ctx context.Context, installationID string, d delivery) (int, error) {
	t := s.ForgeTimings()
	attempts, timeout := 1+t.Retries, t.EventTimeout
	if d.kind == "preUninstall" {
		attempts, timeout = 1, t.PreUninstallTimeout
	}
	var status int
	var reason string
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			if !sleep(ctx, t.RetryDelay) {
				return status, ctx.Err()
			}
		}
		in, err := s.liveForge(installationID)
		if err != nil {
			return status, err
		}
		body := maps.Clone(d.body)
		if n > 1 {
			body["retryContext"] = map[string]any{"retryCount": n - 1, "retryReason": reason}
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		req, err := s.newForgeRequest(actx, in, ForgeCall{Kind: d.kind, Endpoint: d.endpoint, Module: d.event, Body: body})
		if err != nil {
			cancel()
			return 0, err
		}
		status, reason = s.attempt(req)
		cancel()
		s.recordDelivery(ForgeDelivery{Installation: installationID, Kind: d.kind, Event: d.event, Attempt: n, Status: status, Outcome: orOK(reason), At: s.now()})
		if reason == "" {
			return status, nil
		}
		if ctx.Err() != nil {
			return status, ctx.Err()
		}
	}
	return status, &DeliveryError{Kind: d.kind, Event: d.event, Attempts: attempts, Status: status, Reason: reason}
}

func orOK(reason string) string {
	if reason == "" {
		return "ok"
	}
	return reason
}

// attempt sends one request and classifies the answer: "" for success.
func (s *Sim) attempt(req *http.Request) (int, string) {
	resp, err := forgeClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(req.Context().Err(), context.DeadlineExceeded) {
			return 0, retryTimeout
		}
		return 0, retryInvalidResponse
	}
	defer resp.Body.Close()
	// Reading the body within the deadline is part of answering in time.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil && req.Context().Err() != nil {
		return resp.StatusCode, retryTimeout
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return resp.StatusCode, retryInvalidFIT
	case resp.StatusCode/100 != 2:
		return resp.StatusCode, retryInvalidResponse
	}
	return resp.StatusCode, ""
}

func (s *Sim) recordDelivery(d ForgeDelivery) {
	f := s.forge
	f.mu.Lock()
	f.stats.Deliveries = append(f.stats.Deliveries, d)
	if len(f.stats.Deliveries) > 10000 {
		f.stats.Deliveries = slices.Clone(f.stats.Deliveries[len(f.stats.Deliveries)-5000:])
	}
	f.mu.Unlock()
}

// deliverLifecycle sends a lifecycle event to every trigger subscribed to it.
func (s *Sim) deliverLifecycle(ctx context.Context, id, event string) error {
	in, err := s.liveForge(id)
	if err != nil {
		return err
	}
	admin := s.data.users[0].AccountID
	body := map[string]any{
		"id": in.ID, "eventType": event, "context": "ari:cloud:jira::site/" + in.CloudID,
		"app":         map[string]any{"id": in.AppID, "version": in.Version, "name": in.AppName},
		"environment": map[string]any{"id": in.EnvironmentID},
	}
	if event == ForgeInstalledEvent {
		body["installerAccountId"] = admin
	} else {
		body["upgraderAccountId"] = admin
	}
	var errs []error
	for _, t := range in.app.Triggers {
		if slices.Contains(t.Events, event) {
			if _, err := s.deliver(ctx, id, delivery{kind: "event", event: event, endpoint: t.Endpoint, body: body}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// FireForgeTrigger runs the installation's scheduled triggers now (the
// hourly one Forge would run), each with a fresh app system token that
// lives TriggerTokenTTL. With triggers stopped it delivers nothing and
// returns ErrTriggersStopped.
func (s *Sim) FireForgeTrigger(ctx context.Context, id string) error {
	in, err := s.liveForge(id)
	if err != nil {
		return err
	}
	if in.TriggersStopped {
		return ErrTriggersStopped
	}
	if len(in.app.Scheduled) == 0 {
		return fmt.Errorf("jirasim: app %s declares no scheduled trigger", in.AppName)
	}
	var errs []error
	for _, t := range in.app.Scheduled {
		body := map[string]any{"context": map[string]any{"cloudId": in.CloudID, "moduleKey": t.Key}}
		if _, err := s.deliver(ctx, id, delivery{kind: "scheduledTrigger", event: t.Key, endpoint: t.Endpoint, body: body}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RunForgeTriggers fires every installation's scheduled triggers each
// interval until ctx is done (the demo runs it; tests call FireForgeTrigger).
func (s *Sim) RunForgeTriggers(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, in := range s.ForgeInstallations() {
				if err := s.FireForgeTrigger(ctx, in.ID); err != nil && !errors.Is(err, ErrTriggersStopped) {
					s.log.Warn("forge scheduled trigger", "installation", in.ID, "err", err)
				}
			}
		}
	}
}

// ForgeRequest is an invokeRemote call from a Custom UI page.
type ForgeRequest struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

// ForgeResponse is what @forge/bridge's invokeRemote resolves with.
type ForgeResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers"`
	Body    json.RawMessage     `json:"body,omitempty"`
}

// InvokeForge makes the invokeRemote call a user in module (a Custom UI
// page) would: FIT with context and principal, the user's app user token
// and the system token as the page's endpoint asks. Any non-3xx HTTP answer
// with a JSON (or empty) body is a response; 3xx, a non-JSON body, a
// timeout or no answer is an error.
func (s *Sim) InvokeForge(ctx context.Context, id, module, accountID string, r ForgeRequest) (ForgeResponse, error) {
	in, err := s.liveForge(id)
	if err != nil {
		return ForgeResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.ForgeTimings().UITimeout)
	defer cancel()
	var body any
	if len(r.Body) > 0 {
		body = r.Body
	}
	req, err := s.newForgeRequest(ctx, in, ForgeCall{Kind: "ui", Module: module, Method: r.Method, Path: r.Path, Headers: r.Headers, Body: body, AccountID: accountID})
	if err != nil {
		return ForgeResponse{}, err
	}
	rec := ForgeDelivery{Installation: id, Kind: "ui", Event: r.Method + " " + r.Path, Attempt: 1, At: s.now()}
	out, err := s.uiAttempt(req)
	rec.Status = out.Status
	rec.Outcome = "ok"
	if err != nil {
		rec.Outcome = err.Error()
	}
	s.recordDelivery(rec)
	return out, err
}

func (s *Sim) uiAttempt(req *http.Request) (ForgeResponse, error) {
	resp, err := forgeClient.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return ForgeResponse{}, fmt.Errorf("the remote did not answer within %s", s.ForgeTimings().UITimeout)
		}
		return ForgeResponse{}, fmt.Errorf("the remote could not be reached: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 5<<20))
	if err != nil {
		return ForgeResponse{Status: resp.StatusCode}, fmt.Errorf("reading the remote's answer: %w", err)
	}
	out := ForgeResponse{Status: resp.StatusCode, Headers: map[string][]string{}}
	for k, v := range resp.Header {
		out.Headers[strings.ToLower(k)] = v
	}
	if resp.StatusCode/100 == 3 {
		return out, fmt.Errorf("the remote answered with a redirect (HTTP %d), which Forge treats as an error", resp.StatusCode)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return out, nil
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" || !json.Valid(raw) {
		return out, fmt.Errorf("the remote's answer is not JSON (Content-Type %q)", resp.Header.Get("Content-Type"))
	}
	out.Body = raw
	return out, nil
}
