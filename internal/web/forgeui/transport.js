// The Custom UI's transport: the app's JSON operations through
// @forge/bridge invokeRemote, which Forge proxies to Ferry with a Forge
// Invocation Token (and the user's and the app's tokens). app.js uses it
// when it finds window.ferryForge. Bundled at build time (forge/build).
import { invokeRemote } from "@forge/bridge";

window.ferryForge = {
  invoke: function (method, path, body) {
    var req = { method: method, path: path, headers: { Accept: "application/json" } };
    if (body !== undefined) req.body = body;
    return invokeRemote(req);
  }
};
