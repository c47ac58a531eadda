# The Python peer of the export benchmarks: Python's jira library (3.10 or
# later, Debian's python3-jira) reading a site with enhanced_search_issues,
# which pages search/jql with nextPageToken, 100 issues a page with the given
# fields, the way a Python connector built on it reads a site. Prints
# {"rows","ms"}.
import json
import os
import time

from jira import JIRA

cfg = json.loads(os.environ["PEER"])
client = JIRA(server=cfg["base_url"], basic_auth=(cfg["email"], cfg["api_token"]),
              options={"rest_api_version": "3"})
start = time.perf_counter()
issues = client.enhanced_search_issues(cfg["jql"], maxResults=0, fields=cfg["fields"])
ms = (time.perf_counter() - start) * 1000
print(json.dumps({"rows": len(issues), "ms": ms}))
