// The Sentry browser SDK as one file for the app's pages: esbuild bundles
// this entry into internal/web/static/sentry.js (window.Sentry). Only what
// error tracking uses is exported, so tracing, session replay and user
// feedback are left out of the bundle (and out of the pages). Rebuild with
// internal/web/sentry/build.sh after changing the pinned version in
// interop/package.json.
export {
  init,
  captureException,
  captureMessage,
  setUser,
  setTag,
  flush,
  close,
  SDK_VERSION,
} from '@sentry/browser';
