// A Custom UI page that talks to the host exactly as @forge/bridge 7 does:
// window.__bridge.callBridge(name, payload), with invokeRemote sent as
// callBridge("invoke", {...input, invokeType: "ui-remote-fetch"}) answering
// {success, payload, error}, and requestJira as callBridge("fetchProduct", …).
(function () {
  "use strict";
  var bridge = window.__bridge;
  var errors = document.getElementById("errors");
  function fail(e) { errors.textContent += String(e && e.message || e) + "; "; }
  function invokeRemote(input) {
    return bridge.callBridge("invoke", Object.assign({}, input, { invokeType: "ui-remote-fetch" })).then(function (r) {
      return Object.assign({}, r.success ? r.payload : r.error);
    });
  }
  function requestJira(path) {
    return bridge.callBridge("fetchProduct", {
      product: "jira", restPath: path,
      fetchRequestInit: { method: "GET", body: null, headers: [["accept", "application/json"], ["x-atlassian-token", "no-check"]] },
      isMultipartFormData: false
    });
  }
  function run() {
    bridge.callBridge("getContext").then(function (ctx) {
      document.getElementById("context-account").textContent = ctx.accountId + " " + ctx.extension.type + " " + ctx.moduleKey;
    }, fail);
    invokeRemote({ path: "/forge/ui/hello?x=1", method: "POST", headers: { "x-test": "yes" }, body: { greeting: "hi" } }).then(function (r) {
      document.getElementById("remote").textContent = r.status + " " + JSON.stringify(r.body);
    }, fail);
    requestJira("/rest/api/3/myself").then(function (r) {
      document.getElementById("myself").textContent = r.status + " " + JSON.parse(r.body).accountId;
    }, fail);
    bridge.callBridge("notARealBridgeCall").then(function () { fail("unknown bridge call resolved"); }, function (e) {
      document.body.setAttribute("data-unknown-call", String(e.message));
    });
  }
  document.getElementById("again").addEventListener("click", run);
  run();
})();
