package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/jira"
	"ferry/internal/tenant"
)

// Reading Jira with no invocation in flight (a BI tool at 3 a.m.): Ferry
// holds the latest app system token of each installation (the hourly
// trigger keeps it fresh) and exchanges it for a token acting as the feed
// token's owner through offline user impersonation (the GraphQL mutation
// offlineUserAuthToken at FERRY_FORGE_GRAPHQL_URL). That token is cached in
// memory only, until shortly before its ttl. Issue data is read with it and
// never with the system token, which acts as the app's bot and sees every
// project: the system token only exchanges, reads metadata and reaches
// Forge storage.

// offlineMutation is the documented mutation, selecting what Ferry reads.
const offlineMutation = `mutation forge_remote_offlineUserAuthToken($input: OfflineUserAuthTokenInput!) {
  offlineUserAuthToken(input: $input) { success errors { message } authToken { token ttl } }
}`

// expiryMargin: a system token this close to its expiry is not used.
const expiryMargin = time.Minute

// errNoSystemToken: Forge has not sent Ferry a system token for the site yet.
var errNoSystemToken = apperr.New(apperr.EUNAVAILABLE, "Jira has not reached Ferry through Forge for this site yet: open Ferry in Jira once, or wait for the hourly trigger.")

// StaleMessage is the 503 a feed answers once the system token has outlived
// its lifetime: Forge stopped invoking Ferry (app disabled, licence
// lapsed, platform incident); the next invocation heals it.
func StaleMessage(since time.Duration) string {
	hours := int(math.Floor(since.Hours()))
	unit := "hours"
	if hours == 1 {
		unit = "hour"
	}
	return fmt.Sprintf("The app has not been reached by Jira for %d %s, so Ferry cannot read Jira for this site right now. "+
		"Feeds resume as soon as Jira invokes the app again (its hourly trigger, or anyone opening Ferry in Jira).", hours, unit)
}

// systemToken returns the tenant's live app system token, or the 503 that
// says why there is none.
func (f *Remote) systemToken(ctx context.Context, inst tenant.Installation) (string, error) {
	tok, exp, at, err := f.o.Tenants.SystemToken(ctx, inst.TenantID)
	if errors.Is(err, tenant.ErrNoSystemToken) {
		return "", errNoSystemToken
	}
	if err != nil {
		return "", apperr.Wrap(err, apperr.EINTERNAL, "the app system token could not be read")
	}
	now := f.now()
	age := now.Sub(at)
	systemTokenAge.WithLabelValues(inst.TenantID).Set(age.Seconds())
	if !now.Before(exp.Add(-expiryMargin)) {
		return "", apperr.New(apperr.EUNAVAILABLE, "%s", StaleMessage(age))
	}
	return string(tok), nil
}

// bearer signs requests to one installation's API base with a token, and
// to nothing else.
type bearerAuth struct {
	base  string // app.apiBaseUrl
	token func(ctx context.Context) (string, error)
}

func (b bearerAuth) Authorize(ctx context.Context, req *http.Request) error {
	u := req.URL
	if !strings.HasPrefix(u.Scheme+"://"+u.Host+u.EscapedPath(), b.base+"/") {
		return errors.New("forge: request is not for the installation's API base")
	}
	tok, err := b.token(ctx)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// appClient calls the product API as the app (the system token): metadata
// and app properties only.
func (f *Remote) appClient(ctx context.Context, inst tenant.Installation) (*jira.Client, error) {
	if _, err := f.systemToken(ctx, inst); err != nil {
		return nil, err
	}
	return jira.New(inst.APIBaseURL, f.o.APIClient, bearerAuth{base: inst.APIBaseURL, token: func(ctx context.Context) (string, error) {
		return f.systemToken(ctx, inst)
	}})
}

// userClient calls the product API as accountID: with the invocation's own
// user token while that user is in session (a Custom UI call), else with an
// offline impersonation token.
func (f *Remote) userClient(ctx context.Context, inst tenant.Installation, accountID string) (*jira.Client, error) {
	if accountID == "" {
		return nil, errors.New("forge: acting as a user needs an accountId")
	}
	if c, ok := From(ctx); ok && c.Invocation.InstallationID == inst.InstallationID && c.Invocation.Principal == accountID && c.Invocation.UserToken != "" {
		tok := c.Invocation.UserToken
		return jira.New(inst.APIBaseURL, f.o.APIClient, bearerAuth{base: inst.APIBaseURL, token: func(context.Context) (string, error) { return tok, nil }})
	}
	// Fail now, with the clear answer, if the system token has lapsed.
	if _, err := f.systemToken(ctx, inst); err != nil {
		return nil, err
	}
	return jira.New(inst.APIBaseURL, f.o.APIClient, bearerAuth{base: inst.APIBaseURL, token: func(ctx context.Context) (string, error) {
		return f.offline.Get(ctx, inst.TenantID+"\x00"+accountID, f.now, func() (string, time.Duration, error) {
			return f.impersonate(ctx, inst, accountID)
		})
	}})
}

// ErrImpersonation: Atlassian refused to let the app act as the user.
var ErrImpersonation = errors.New("forge: offline user impersonation was refused")

// impersonate runs offlineUserAuthToken for accountID.
func (f *Remote) impersonate(ctx context.Context, inst tenant.Installation, accountID string) (string, time.Duration, error) {
	sys, err := f.systemToken(ctx, inst)
	if err != nil {
		return "", 0, err
	}
	contextID := inst.WorkspaceARI
	if contextID == "" {
		// The form Atlassian's staff gave when the workspace id is unknown.
		contextID = "ari:cloud:jira:" + inst.CloudID + ":workspace/" + inst.CloudID
	}
	body, _ := json.Marshal(map[string]any{"query": offlineMutation, "operationName": "forge_remote_offlineUserAuthToken",
		"variables": map[string]any{"input": map[string]any{"contextIds": []string{contextID}, "userId": accountID}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.o.GraphQLURL, bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+sys)
	resp, err := f.o.APIClient.Do(req)
	if err != nil {
		return "", 0, apperr.Wrap(err, apperr.EUNAVAILABLE, "Atlassian's API could not be reached to act as this token's owner; try again shortly.")
	}
	defer resp.Body.Close()
	if resp.Request != nil && resp.Request.URL.Host != req.URL.Host {
		return "", 0, apperr.New(apperr.EUNAVAILABLE, "Atlassian's API redirected the impersonation request elsewhere")
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
	if err != nil {
		return "", 0, apperr.Wrap(err, apperr.EUNAVAILABLE, "Atlassian's API answer could not be read; try again shortly.")
	}
	tok, ttl, msg, err := ParseOfflineToken(raw)
	switch {
	case err != nil && resp.StatusCode >= 500:
		return "", 0, apperr.Wrap(err, apperr.EUNAVAILABLE, "Atlassian's API answered %d; try again shortly.", resp.StatusCode)
	case err != nil && resp.StatusCode == http.StatusTooManyRequests:
		return "", 0, apperr.Wrap(err, apperr.ERATELIMIT, "Atlassian limits how often Ferry may act as users; try again in a minute.")
	case err != nil:
		return "", 0, apperr.Wrap(fmt.Errorf("%w: %v", ErrImpersonation, err), apperr.EFORBIDDEN,
			"Jira does not let Ferry act as this token's owner (%s). A service account cannot be impersonated; a deactivated user or one without access to the app has no data to read. Ask an active user to create a new token.", msg)
	}
	return tok, ttl, nil
}

// ParseOfflineToken reads the mutation's answer: the token and its ttl, or
// Atlassian's reason for refusing (safe to show: it names no secret).
func ParseOfflineToken(raw []byte) (token string, ttl time.Duration, reason string, err error) {
	var out struct {
		Data *struct {
			Offline *struct {
				Success bool `json:"success"`
				Errors  []struct {
					Message string `json:"message"`
				} `json:"errors"`
				AuthToken *struct {
					Token string  `json:"token"`
					TTL   float64 `json:"ttl"`
				} `json:"authToken"`
			} `json:"offlineUserAuthToken"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", 0, "unreadable answer", errors.New("the GraphQL answer is not JSON")
	}
	reasons := func(list []struct {
		Message string `json:"message"`
	}) string {
		var msgs []string
		for _, e := range list {
			if m := strings.TrimSpace(e.Message); m != "" && len(msgs) < 3 {
				if len(m) > 200 {
					m = m[:200]
				}
				msgs = append(msgs, m)
			}
		}
		if len(msgs) == 0 {
			return "no reason given"
		}
		return strings.Join(msgs, "; ")
	}
	if out.Data == nil || out.Data.Offline == nil {
		return "", 0, reasons(out.Errors), errors.New("the GraphQL answer has no offlineUserAuthToken")
	}
	o := out.Data.Offline
	if !o.Success || o.AuthToken == nil {
		return "", 0, reasons(o.Errors), errors.New("offlineUserAuthToken did not succeed")
	}
	t := o.AuthToken
	if t.Token == "" || len(t.Token) > maxOAuthTokenLen || t.TTL <= 0 || t.TTL > 24*3600 {
		return "", 0, "malformed token", errors.New("offlineUserAuthToken gave no usable token")
	}
	return t.Token, time.Duration(t.TTL * float64(time.Second)), "", nil
}
