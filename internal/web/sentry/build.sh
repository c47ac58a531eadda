#!/usr/bin/env bash
# Rebuilds internal/web/static/sentry.js, the Sentry browser SDK bundled for
# the app's pages, from the version pinned in interop/package.json:
#   (cd interop && npm ci) && bash internal/web/sentry/build.sh
# An optional argument writes the bundle elsewhere (the test that checks the
# committed bundle is current uses it).
# @sentry/core is pinned beside @sentry/browser in interop/package.json: other
# interop packages bring older @sentry/* versions, and the pin keeps Sentry's
# core hoisted, so exactly one copy of it is bundled.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$root/internal/web/static/sentry.js}"
esbuild="$root/interop/node_modules/.bin/esbuild"
[ -x "$esbuild" ] || { echo "build.sh: $esbuild missing (cd interop && npm ci)" >&2; exit 1; }
# NODE_PATH lets the entry outside interop/ resolve the pinned packages.
NODE_PATH="$root/interop/node_modules" "$esbuild" "$here/entry.js" \
  --bundle --minify --format=iife --global-name=Sentry --target=es2020 \
  --legal-comments=eof --log-level=warning --outfile="$out"
