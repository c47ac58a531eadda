// The Custom UI bundle: the transport first, then the same app.js the
// Connect pages load. Module order is evaluation order.
import "./transport.js";
import "../static/app.js";
