// Starts the Sentry browser SDK (sentry.js) on the app's pages. Errors go to
// Ferry's own relay (the DSN names Ferry), which scrubs them before anything
// reaches Sentry. Everything comes from this script tag's data attributes:
// no inline code, no cookies, no tracing or replay, and sendDefaultPii off
// so the SDK itself collects no IP address, cookies or request headers.
(function () {
  'use strict';
  var tag = document.currentScript;
  var S = window.Sentry;
  if (!tag || !S || !tag.dataset.dsn) {
    return;
  }
  S.init({
    dsn: tag.dataset.dsn,
    release: tag.dataset.release || undefined,
    sendDefaultPii: false,
  });
  if (tag.dataset.tenant) {
    // Scopes the user pseudonym on the relay, which removes the tag.
    S.setTag('ferry_tenant', tag.dataset.tenant);
  }
  if (tag.dataset.user) {
    // Ferry's per-tenant pseudonym of the user: never an accountId or email.
    S.setUser({ id: tag.dataset.user });
  }
})();
