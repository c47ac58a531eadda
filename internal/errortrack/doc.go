// Package errortrack keeps the statement's promise on Real-time Error
// Tracking Data (P5): "Our Applications track errors of our Apps' resources
// executed in the end-users' browsers in real-time. This includes, for
// example, error messages and information about the environment such as
// browser type, browser version, and operating system", with Sentry as the
// subcontractor (P15).
//
// Ferry is a Sentry relay that scrubs before anything leaves:
//
//   - Ingest (ingest.go) speaks Sentry's protocol, so the real SDKs work
//     unchanged with a DSN pointing at Ferry (http://KEY@ferry-host/errors/1):
//     POST /errors/api/{project}/envelope/ and the legacy …/store/, the key
//     from the query (sentry_key, what @sentry/browser sends as text/plain
//     to avoid a CORS preflight) or the X-Sentry-Auth header; gzip and
//     deflate bodies; CORS for the app's own origin; size limits per
//     envelope and per item (413); a per-key rate limit (429, Retry-After).
//     An envelope is all-or-nothing: one bad item and nothing is stored.
//   - Scrubbing is internal/scrub's Event and Session: only error type and
//     scrubbed message, stack frames, browser/OS/runtime name and version,
//     app version, release, environment and a keyed pseudonym of the user
//     are kept.
//   - The local store (store.go) keeps scrubbed events for the console
//     (Store.Recent) FERRY_ERRORS_RETENTION_DAYS (default 30; job
//     errortrack.retention); with FERRY_SENTRY_UPSTREAM_DSN set, every
//     accepted item also enters a durable outbox in the same transaction and
//     the forwarder (forward.go) sends it through the egress gate, retrying
//     with backoff until Sentry takes it — across restarts.
//   - Ferry's own errors (server.go): every error-level log record (panics,
//     5xx, failed jobs) becomes a sentry-go event whose BeforeSend is the
//     same scrubber, and whose transport is the same outbox.
package errortrack
