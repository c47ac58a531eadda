// Reads [{method, url, baseUrl}] on stdin; prints [{canonical, qsh}] computed
// by atlassian-jwt (Atlassian's own library), for the qsh interop test.
const jwt = require('atlassian-jwt');
let input = '';
process.stdin.on('data', d => input += d);
process.stdin.on('end', () => {
  const out = JSON.parse(input).map(c => {
    const req = jwt.fromMethodAndUrl(c.method, c.url);
    return {
      canonical: jwt.createCanonicalRequest(req, false, c.baseUrl),
      qsh: jwt.createQueryStringHash(req, false, c.baseUrl),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
