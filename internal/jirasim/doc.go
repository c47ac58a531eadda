// Package jirasim is a faithful Jira Cloud simulator for Ferry's tests, demo
// and benchmarks. It behaves like the real site where Ferry can tell:
// response shapes (checked against Atlassian's OpenAPI document and by
// jira.js), paging, permissions, Connect JWT, signed installs, OAuth user
// impersonation, rate limits and failures. It also plays Forge for a Forge
// Remote app: JWKS-signed invocation tokens, system and user tokens,
// lifecycle events, the scheduled trigger, preUninstall, the /ex/jira
// gateway, offline user impersonation over GraphQL, the KVS storage API,
// Connect-on-Forge migration and a Custom UI host with a bridge stand-in.
//
// It shares no code with what it stands in for: it imports no other Ferry
// package, and its qsh, JWT, paging and JQL are written separately, so a bug
// on one side is caught by the other.
//
// # Go API
//
//	s := jirasim.New(jirasim.Options{Issues: 100_000, Projects: 3, Users: 20, Seed: 1})
//	srv := httptest.NewServer(s); s.SetBaseURL(srv.URL)   // or: base, err := s.Start(ctx, "127.0.0.1:0")
//	s.Users()                  // []User: AccountID, DisplayName, Email, APIToken, Admin, Projects, EmailVisible, Closed
//	s.ProjectKeys()            // project keys in key order
//	in, err := s.Install(ctx, appURL, jirasim.InstallValid) // fetch descriptor, signed installed (+ enabled) callback
//	s.Enable(ctx, key); s.Disable(ctx, key); s.Uninstall(ctx, key)
//	s.Installation(key)        // Installation{AddonKey, ClientKey, SharedSecret, OAuthClientID, BaseURL, AppBaseURL, License, Status, …}
//	s.SetLicense(key, "active"|"expired"|"none")
//	s.RenameSite(newURL)       // later installs, tnt checks and self links use it
//	s.Rename(ctx, newURL)      // RenameSite, then installed with the new baseUrl and the same secret, as Atlassian renames a site
//	s.SetClock(now)            // the clock that signs tokens (they carry whole seconds and no jti, as Jira's)
//	s.PageURL(key, module, accountID) // signed iframe URL of an app page
//	s.CreateIssue(jirasim.NewIssue{Project: "CORE", Summary: "canary"})
//	s.SetKnobs(jirasim.Knobs{Latency: 150 * time.Millisecond, Rate: 100, FaultRate: 0.01})
//	s.Stats(); s.ResetStats()  // requests per endpoint, 429s, injected faults, max concurrency
//	s.SetReportAnswer(accountID, "closed"|"updated"|"none"|""); s.ThrottleReports(n, retryAfter)
//	s.SetReportCyclePeriod(d); s.ReportCalls(); s.ResetReportCalls() // personal data reporting, scripted
//	jirasim.QSH(method, escapedPath, basePath, rawQuery) // reference qsh
//	jirasim.RunCLI(ctx, args, stdout, stderr) // `ferry sim …`
//
// Forge (forge*.go; docs/jirasim.md has the contract and the choices):
//
//	app, err := jirasim.LoadForgeManifest("forge/manifest.yml", vars) // or a ForgeApp literal
//	in, err := s.InstallForge(ctx, app)   // avi:forge:installed:app to the remote, with retries
//	s.ForgeJWKSURL(); s.ForgeGraphQLURL(); s.ForgeStorageURL(); in.APIBaseURL
//	s.FireForgeTrigger(ctx, in.ID); s.StopForgeTriggers(in.ID); s.RunForgeTriggers(ctx, time.Hour)
//	s.InvokeForge(ctx, in.ID, module, accountID, req); s.ForgePageURL(in.ID, module, accountID)
//	s.UpgradeForge(ctx, in.ID, v); s.UninstallForge(ctx, in.ID); s.MigrateConnectToForge(ctx, app)
//	s.RotateForgeKeys(); s.RetireForgeKeys(); s.SetForgeLicense(in.ID, "inactive"); s.SetServiceAccount(id, true)
//	s.NewForgeRequest(ctx, in.ID, jirasim.ForgeCall{…, Variant: jirasim.FITExpired}) // attack tables
//	s.ForgeStats(); s.ForgeStorage(in.ID); s.SetForgeTimings(jirasim.ForgeTimings{RetryDelay: time.Millisecond})
//
// Install returns a *LifecycleError carrying the app's HTTP status when the
// app refuses a callback; InstallVariants lists deliberately broken installs
// (bad signature, wrong aud, unknown or missing kid, context qsh, wrong qsh,
// clientKey ≠ iss, alg none, HS256 keyed with the public key, expired,
// unsigned) for testing the app's verification.
//
// # Data
//
// Issues are generated from (seed, index) on demand, so 1M issues cost
// almost no memory; same seed, same site. Issue i has id 10001+i; projects
// own contiguous index blocks in key order and created grows with the
// index. Issues created through REST or CreateIssue are kept in memory.
// The first user is the site admin and browses every project; the second
// browses only the first project; the rest have seeded subsets. Some
// accounts are closed and some hide their email.
//
// # HTTP
//
// REST v3: search/jql (GET, POST; nextPageToken paging, isLast, no total;
// fields default to id; 5000 per page for id/key-only pages, otherwise at
// most 100; unbounded JQL refused), search/approximate-count,
// issue/bulkfetch, changelog/bulkfetch, field, project/search, myself,
// user, user/bulk, user/groups, groups/picker, POST issue, GET
// issue/{idOrKey}; the removed search answers 410. Connect:
// atlassian-connect/1/addons/{key} (license), its properties (the app's own
// JWT only, 32 KB values) and atlassian-connect/latest/report-accounts.
// Without ORDER BY, results come in id order.
//
// Auth: HTTP Basic (email + API token); Connect JWT in "Authorization: JWT"
// or ?jwt= (HS256, iss = addon key, qsh of the request) acting with the
// app's view of every project; and bearer tokens from POST /oauth2/token
// (JWT-bearer grant, assertion HS256 with the shared secret, aud
// https://oauth-2-authorization-server.services.atlassian.com, tnt = site
// URL, exp ≤ 60 s ahead) acting as that user. Install callbacks are RS256
// with a kid whose PEM public key is at /connect-install-keys/{kid}.
//
// GET /jira/apps/{addonKey}/{moduleKey}?as={accountId} shows a stand-in Jira
// frame with a user switcher around the signed app iframe. /_sim/ is an
// unauthenticated control API (users, install, enable, disable, uninstall,
// installations, license, rename, page-url, issues, stats, knobs); the
// simulator is a test fixture and must never face the internet.
//
// Realism knobs apply to /rest/ and /oauth2/: latency ± jitter before each
// response; a token bucket per tenant×endpoint (an app and its user tokens
// share one tenant, each Basic user is one) answering 429 with Retry-After,
// X-RateLimit-* and RateLimit-Reason; and a seeded fraction of faults (500,
// 503, slow bodies, dropped connections). Logs carry method, path and status
// only: never a query string, token or secret.
package jirasim
