// Walks the simulator's data model with jira.js — its cloud and Agile
// clients, whose zod response schemas are set to throw on drift — as two
// users, and prints one JSON summary line per user for the Go test.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const nm = process.env.NODE_PATH;
const { createCloudClient, createAgileClient } = await import(pathToFileURL(path.join(nm, 'jira.js', 'dist', 'index.js')).href);
const cfg = JSON.parse(process.env.SIM_MODEL_INTEROP);

async function walk(user) {
  const conf = { host: cfg.base_url, onSchemaMismatch: 'throw', auth: { type: 'basic', email: user.email, apiToken: user.api_token } };
  const jira = createCloudClient(conf);
  const agile = createAgileClient(conf);
  const out = { worklogs: {}, comments: {}, sprint_issues: {}, versions: {}, components: {}, boards: [], stream: [], listed: 0, users: 0, emails: 0 };
  for (const id of cfg.issues) {
    try {
      const wl = [];
      for (let startAt = 0; ; ) {
        const page = await jira.issueWorklogs.getIssueWorklog({ issueIdOrKey: id, startAt, maxResults: 4 });
        wl.push(...page.worklogs.map(w => w.id));
        startAt += page.worklogs.length;
        if (page.worklogs.length === 0 || startAt >= page.total) break;
      }
      const cm = [];
      for (let startAt = 0; ; ) {
        const page = await jira.issueComments.getComments({ issueIdOrKey: id, startAt, maxResults: 3 });
        cm.push(...page.comments.map(c => c.id));
        startAt += page.comments.length;
        if (page.comments.length === 0 || startAt >= page.total) break;
      }
      out.worklogs[id] = wl;
      out.comments[id] = cm;
    } catch (e) {
      if (e?.status !== 404 && e?.response?.status !== 404 && !String(e).includes('404')) throw e;
    }
  }
  for (let since = 0; ; ) {
    const page = await jira.issueWorklogs.getIdsOfWorklogsModifiedSince({ since });
    const ids = page.values.map(v => v.worklogId);
    out.stream.push(...ids);
    if (ids.length > 0) {
      const listed = await jira.issueWorklogs.getWorklogsForIds({ ids });
      out.listed += listed.length;
    }
    if (page.lastPage) break;
    since = page.until;
  }
  for (let startAt = 0; ; ) {
    const page = await agile.board.getAllBoards({ startAt, maxResults: 2 });
    for (const b of page.values) {
      out.boards.push(b.id);
      if (b.type !== 'scrum') continue;
      for (let s = 0; ; ) {
        const sp = await agile.board.getAllSprints({ boardId: b.id, startAt: s, maxResults: 50 });
        for (const sprint of sp.values) {
          if (!cfg.sprints.includes(sprint.id)) continue;
          const ids = [];
          for (let nextPageToken; ; ) {
            const is = await agile.sprint.getIssuesForSprint({ sprintId: sprint.id, nextPageToken, maxResults: 5, fields: ['summary', 'status'] });
            ids.push(...is.issues.map(x => x.id));
            if (is.isLast) break;
            nextPageToken = is.nextPageToken;
          }
          // The board's variant, by token as well, must agree.
          const viaBoard = [];
          for (let nextPageToken; ; ) {
            const is = await agile.board.getBoardIssuesForSprint({ boardId: b.id, sprintId: sprint.id, nextPageToken, maxResults: 3 });
            viaBoard.push(...is.issues.map(x => x.id));
            if (is.isLast) break;
            nextPageToken = is.nextPageToken;
          }
          if (JSON.stringify(viaBoard) !== JSON.stringify(ids)) throw new Error(`sprint ${sprint.id}: board variant ${viaBoard} != ${ids}`);
          out.sprint_issues[sprint.id] = ids;
        }
        s += sp.values.length;
        if (sp.isLast || sp.values.length === 0) break;
      }
    }
    startAt += page.values.length;
    if (page.isLast || page.values.length === 0) break;
  }
  for (const key of cfg.projects) {
    try {
      const vs = await jira.projectVersions.getProjectVersionsPaginated({ projectIdOrKey: key, startAt: 0, maxResults: 2 });
      const rest = await jira.projectVersions.getProjectVersionsPaginated({ projectIdOrKey: key, startAt: 2, maxResults: 50 });
      out.versions[key] = [...vs.values, ...rest.values].map(v => v.id);
      out.components[key] = (await jira.projectComponents.getProjectComponents({ projectIdOrKey: key })).map(c => c.id);
    } catch (e) {
      if (!String(e).includes('404') && e?.status !== 404) throw e;
    }
  }
  const users = await jira.users.getAllUsers({ startAt: 0, maxResults: 1000 });
  out.users = users.length;
  out.emails = users.filter(u => u.emailAddress).length;
  return out;
}

for (const user of cfg.users) {
  console.log(JSON.stringify(await walk(user)));
}
