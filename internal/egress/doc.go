// Package egress makes "where data goes" a property of the code. It keeps
// three promises of the Data Security & Privacy Statement:
//
//   - P8, data location: "Our hosting region is the United States";
//     instance and license information "are stored on Amazon servers in
//     Oregon, USA". CheckRegion fails start-up unless FERRY_REGION is a
//     well-formed AWS region and every storage, backup and key-management
//     endpoint (S3 bucket and endpoint, KMS key ARN and endpoint) is in it.
//     Each problem is one line naming the setting, e.g.
//     "FERRY_KEK: KMS key is in eu-west-1, but FERRY_REGION is us-west-2".
//
//   - P9, no data sharing: every outbound connection Ferry opens goes
//     through one Gate. Gate.Client(category) returns the HTTP client of a
//     destination category (Jira, InstallKeys, OAuth, Sentry, S3, KMS) and
//     Gate.DialContext opens non-HTTP connections (SMTP). Each category has
//     a closed allowlist: installed tenants' Jira sites (host patterns plus
//     a TenantSites check), Atlassian's install-key and OAuth services, and
//     the configured endpoints of declared subprocessors. Anything else is
//     refused with an error matching ErrDestinationRefused and counted in
//     ferry_egress_requests_total{category,outcome}. Only https is used
//     (plain http only to loopback, and loopback only with AllowLoopback for
//     the simulator, demo and tests). Redirects are re-checked hop by hop,
//     at most MaxRedirects. Hosts in unusual notations (2130706433,
//     0177.0.0.1, 0x7f.1, 127.1, IPv6 zones) are refused by ParseHost before
//     any resolution, and after DNS resolution every address, and again the
//     address actually connected, must pass CheckAddr: no loopback, private,
//     link-local, cloud-metadata, CGNAT, multicast, broadcast, reserved or
//     unspecified address, also when embedded in IPv4-mapped, NAT64 or 6to4
//     IPv6. Proxies from the environment are ignored so the gate always sees
//     the real address. TestNoOutboundCallsBypassTheGate fails the build if
//     any other package constructs its own client, transport or dialer.
//
//   - P15, subcontractors: "Amazon" (hosting, Oregon) and "Sentry"
//     (Functional Software, Inc., San Francisco; real-time error tracking of
//     the app's browser code). DefaultSubprocessors returns that list and a
//     Registry keeps it in declared order for the statement page. New
//     refuses to start if a Sentry DSN, SMTP relay, S3 or KMS endpoint is
//     not operated by a declared subprocessor: data can only go to a third
//     party that the statement names.
//
// Jira, the install-key service and the OAuth server are Atlassian, the
// parent product the customer already uses: calls there return data to the
// customer's own platform and are not sharing.
package egress
