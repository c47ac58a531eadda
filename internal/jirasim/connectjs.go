package jirasim

import "net/http"

// connectJS stands in for Atlassian's all.js (connect-cdn.atl-paas.net),
// which every Connect page loads so the Jira frame knows it has loaded and
// can size it. The simulated Jira page needs no handshake, so the stand-in
// only provides the AP object's shape and tells the parent the page is up.
const connectJS = `(function () {
  "use strict";
  var noop = function () {};
  window.AP = window.AP || {
    resize: noop, sizeToParent: noop, hideFooter: noop,
    context: { getToken: function (cb) { if (cb) cb(null); return Promise.resolve(null); } },
    events: { on: noop, off: noop, emit: noop },
    navigator: { go: noop, reload: function () { window.location.reload(); } }
  };
  try { window.parent.postMessage({ jirasim: "app-loaded" }, "*"); } catch (e) {}
})();
`

func handleConnectJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write([]byte(connectJS))
}
