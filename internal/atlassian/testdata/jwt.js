// Ferry's interop helper around atlassian-jwt (Atlassian's own library).
// stdin: {op, ...}; stdout: JSON. Ops:
//   qsh:    cases [{method, url, baseUrl}] → [{canonical, qsh}]
//   sign:   {hs: {claims, secret}, rs: {claims, key, kid}} → {hs, rs}
//   verify: tokens [{token, secret, method, url, baseUrl}] → [{claims, qsh}]
const jwt = require('atlassian-jwt');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  let out;
  switch (req.op) {
  case 'qsh':
    out = req.cases.map(c => {
      const r = jwt.fromMethodAndUrl(c.method, c.url);
      return { canonical: jwt.createCanonicalRequest(r, false, c.baseUrl), qsh: jwt.createQueryStringHash(r, false, c.baseUrl) };
    });
    break;
  case 'sign':
    out = {
      hs: jwt.encodeSymmetric(req.hs.claims, req.hs.secret, 'HS256'),
      rs: jwt.encodeAsymmetric(req.rs.claims, req.rs.key, 'RS256', { kid: req.rs.kid }),
    };
    break;
  case 'verify':
    out = req.tokens.map(t => {
      const claims = jwt.decodeSymmetric(t.token, t.secret, 'HS256');
      const qsh = t.url ? jwt.createQueryStringHash(jwt.fromMethodAndUrl(t.method, t.url), false, t.baseUrl) : '';
      return { claims, qsh };
    });
    break;
  default:
    throw new Error('unknown op ' + req.op);
  }
  process.stdout.write(JSON.stringify(out));
});
