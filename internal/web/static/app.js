// Ferry's app pages inside Jira. Plain JavaScript, no framework. Everything
// shown comes from the app's JSON API: on Connect from /app-api/ with the
// page's context token; on Forge (Custom UI) through @forge/bridge
// invokeRemote, which the Custom UI bundle provides as window.ferryForge
// (internal/web/forgeui). Text is always set with textContent, never parsed
// as HTML. No cookies, no storage, no third-party requests.
(function () {
  "use strict";

  var token = (document.querySelector('meta[name="ferry-token"]') || {}).content || "";
  var forge = window.ferryForge || null;
  var $ = function (id) { return document.getElementById(id); };

  // ---- API -----------------------------------------------------------------

  function ApiError(status, problem) {
    this.status = status;
    this.problem = problem || {};
    this.message = this.problem.detail || ("Ferry answered " + status + ".");
  }

  async function api(method, path, body) {
    if (forge) return forgeApi(method, path, body);
    var opts = { method: method, headers: { "Authorization": "JWT " + token, "Accept": "application/json" }, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    var resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, { detail: "Ferry could not be reached. Check your connection and try again." });
    }
    if (resp.status === 204) return null;
    var data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      if (resp.status === 401) {
        pageError("Your session on this page has expired. Reload the page to continue.");
      }
      throw new ApiError(resp.status, data);
    }
    return data;
  }

  // On Forge the same operations go through invokeRemote: Forge verifies
  // the user, signs the call with a Forge Invocation Token and proxies it to
  // Ferry's /forge/app-api/; the answer has the same status and body.
  async function forgeApi(method, path, body) {
    var res;
    try {
      res = await forge.invoke(method, path.replace(/^\/app-api\//, "/forge/app-api/"), body);
    } catch (e) {
      throw new ApiError(0, { detail: "Ferry could not be reached through Jira. Try again in a moment." });
    }
    res = res || {};
    var status = res.status || 0;
    var data = res.body;
    if (typeof data === "string") {
      try { data = data ? JSON.parse(data) : null; } catch (e) { data = null; }
    }
    if (status === 204) return null;
    if (status < 200 || status > 299) {
      if (status === 401) {
        pageError("Jira could not confirm who you are. Reload the page to continue.");
      }
      throw new ApiError(status, data || (res.message ? { detail: String(res.message) } : null));
    }
    return data === undefined ? null : data;
  }

  // ---- DOM helpers ---------------------------------------------------------

  // el("p", {class: "x"}, "text", child…): attributes and text only, never HTML.
  function el(tag, attrs) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") n.textContent = v;
        else if (k === "onclick") n.addEventListener("click", v);
        else if (k === "value") n.value = v;
        else if (k === "value-attr") { n.setAttribute("value", v); n.value = v; }
        else n.setAttribute(k, v === true ? "" : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return n;
  }

  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }

  function pageError(msg) {
    var b = $("page-error");
    if (!b) return;
    b.textContent = msg;
    b.hidden = !msg;
  }

  function busy(btn, on) {
    btn.disabled = on;
    if (on) btn.setAttribute("aria-busy", "true"); else btn.removeAttribute("aria-busy");
  }

  var dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
  function fmtTime(iso) { return iso ? dateTime.format(new Date(iso)) : ""; }
  function fmtDate(iso) { return iso ? dateOnly.format(new Date(iso)) : ""; }
  function fmtDay(day) { // "YYYY-MM-DD", a UTC day
    if (!day) return "Never";
    var p = day.split("-");
    return dateOnly.format(new Date(Date.UTC(+p[0], +p[1] - 1, +p[2], 12)));
  }

  // Field errors: problem+json names the input at fault in "field".
  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (e) { e.hidden = true; e.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (e) { e.removeAttribute("aria-invalid"); });
    form.querySelectorAll(".form-error").forEach(function (e) { e.hidden = true; e.textContent = ""; });
  }

  // showError puts err next to its field (ids: err-<field>, inputs map) or
  // at the top of the form.
  function showError(form, err, inputs) {
    var field = err.problem && err.problem.field;
    var slot = field && $("err-" + field);
    if (slot && form.contains(slot)) {
      slot.textContent = err.message;
      slot.hidden = false;
      var input = inputs && inputs[field];
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
      return;
    }
    var box = form.querySelector(".form-error");
    if (err.status === 401) return; // the page banner says it
    box.textContent = err.message;
    box.hidden = false;
  }

  // Copy buttons: data-copy names the read-only input to copy.
  document.addEventListener("click", async function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var input = $(btn.getAttribute("data-copy"));
    if (!input) return;
    input.focus();
    input.select();
    var ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (e) {
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
    }
    btn.textContent = ok ? "Copied" : "Press Ctrl+C";
    setTimeout(function () { btn.textContent = "Copy"; }, 2000);
  });

  // copyRow is a read-only input with a Copy button. The value is also its
  // attribute, so it shows in the DOM as it does on screen.
  function copyRow(id, label, value, extraClass) {
    return el("div", { class: "copy-row" },
      el("input", { id: id, type: "text", readonly: true, class: "mono " + (extraClass || ""), "value-attr": value, "aria-label": label }),
      el("button", { type: "button", class: "btn", "data-copy": id, "aria-label": "Copy " + label }, "Copy"));
  }

  // ---- who am I ------------------------------------------------------------

  var me = null;
  async function loadMe() {
    me = await api("GET", "/app-api/me");
    $("whoami").textContent = "Signed in as " + me.displayName;
    if (me.licensed === false && !$("license-banner")) {
      pageError("This Jira site has no active license for Ferry BI Connector. Feeds answer only once a Jira administrator renews it.");
    }
    return me;
  }

  // ---- data sources page ---------------------------------------------------

  var fields = null;      // [{id, name, type, collection, custom, exportable, reason, note, columns}]
  var fieldsByID = {};
  var selected = [];      // field ids in column order
  var editing = null;     // source being edited, or null for a new one
  var sources = [];

  function typeLabel(f) {
    if (!f) return "unknown";
    if (f.exportable === false) return "not exportable";
    if (f.columns && f.columns.length > 1) return f.columns.length + " columns";
    return f.collection ? f.type + " list" : f.type;
  }

  // What a field becomes, for the picker's tooltip and the selected list:
  // its columns and what they hold.
  function fieldDetail(f) {
    if (!f || !f.columns || f.exportable === false) return "";
    var cols = f.columns.map(function (c) { return c.name + " (" + (c.collection ? c.type + " list" : c.type) + ")"; }).join(", ");
    return (f.columns.length > 1 ? "Columns: " : "Column: ") + cols + (f.note ? ". " + f.note : "");
  }

  async function loadFields() {
    if (fields) return fields;
    fields = await api("GET", "/app-api/fields");
    fields.forEach(function (f) { fieldsByID[f.id] = f; });
    return fields;
  }

  function renderOptions() {
    var list = clear($("field-options"));
    var q = $("field-search").value.trim().toLowerCase();
    var shown = 0, matched = 0;
    (fields || []).forEach(function (f) {
      if (q && f.name.toLowerCase().indexOf(q) < 0 && f.id.toLowerCase().indexOf(q) < 0) return;
      matched++;
      if (shown >= 200) return;
      shown++;
      var on = selected.indexOf(f.id) >= 0;
      if (f.exportable === false && !on) {
        // Not a choice: say why, and where its data is instead.
        list.appendChild(el("li", { class: "not-exportable", "data-field": f.id },
          el("span", { class: "fname" }, f.name,
            el("span", { class: "freason" }, f.reason)),
          el("span", { class: "ftype" }, typeLabel(f))));
        return;
      }
      var detail = fieldDetail(f);
      list.appendChild(el("li", null,
        el("button", { type: "button", class: "pick", "data-field": f.id, "aria-pressed": on ? "true" : "false",
          title: (on ? "Remove " : "Add ") + f.name + (detail ? "\n" + detail : ""),
          onclick: function () { toggleField(f.id); } },
          el("span", { class: "fname" }, (on ? "✓ " : "+ ") + f.name),
          el("span", { class: "ftype" }, typeLabel(f)))));
    });
    var count = $("field-count");
    if (!fields) count.textContent = "Loading fields from Jira…";
    else if (matched === 0) count.textContent = "No field matches \u201c" + $("field-search").value.trim() + "\u201d.";
    else count.textContent = matched + (matched === 1 ? " field" : " fields") + (shown < matched ? ", showing the first " + shown : "") + ". Select one to add or remove it.";
  }

  function renderSelected() {
    var list = clear($("field-selected"));
    selected.forEach(function (id, i) {
      var f = fieldsByID[id];
      var name = f ? f.name : id;
      var detail = !f ? "" : f.exportable === false ? f.reason : (f.columns && f.columns.length > 1) || f.note ? fieldDetail(f) : "";
      list.appendChild(el("li", { "data-field": id },
        el("span", { class: "row" },
          el("span", { class: "fname" }, name, detail ? el("span", { class: "freason" }, detail) : null),
          el("span", { class: "ftype" }, typeLabel(f)),
          el("span", { class: "btn-group" },
            el("button", { type: "button", class: "btn btn-small", "aria-label": "Move " + name + " up", disabled: i === 0,
              onclick: function () { moveField(i, -1); } }, "↑"),
            el("button", { type: "button", class: "btn btn-small", "aria-label": "Move " + name + " down", disabled: i === selected.length - 1,
              onclick: function () { moveField(i, 1); } }, "↓"),
            el("button", { type: "button", class: "btn btn-small", "aria-label": "Remove " + name,
              onclick: function () { toggleField(id); } }, "Remove")))));
    });
    $("field-none").hidden = selected.length > 0;
  }

  function toggleField(id) {
    var i = selected.indexOf(id);
    if (i >= 0) selected.splice(i, 1); else selected.push(id);
    renderSelected();
    renderOptions();
    var again = $("field-options").querySelector('[data-field="' + CSS.escape(id) + '"]');
    if (again) again.focus();
  }

  function moveField(i, by) {
    var j = i + by;
    if (j < 0 || j >= selected.length) return;
    var t = selected[i]; selected[i] = selected[j]; selected[j] = t;
    renderSelected();
    var btns = $("field-selected").children[j].querySelectorAll("button");
    (by < 0 ? btns[0] : btns[1]).focus();
  }

  async function openForm(src) {
    var form = $("source-form");
    editing = src || null;
    clearErrors(form);
    $("source-form-h").textContent = src ? "Edit \u201c" + src.name + "\u201d" : "Create data source";
    $("src-name").value = src ? src.name : "";
    $("src-jql").value = src ? src.jql : "";
    var tables = src ? src.tables : ["Issues"];
    document.querySelectorAll('input[name="tables"]').forEach(function (box) {
      box.checked = tables.indexOf(box.value) >= 0;
    });
    fillWorkingTime(src ? src.workingTime : null);
    var vis = src ? src.visibility : "private";
    $("vis-" + vis).checked = true;
    $("src-groups").value = src && src.groups ? src.groups.join(", ") : "";
    showVisibility();
    selected = src ? src.fields.slice() : [];
    $("field-search").value = "";
    form.hidden = false;
    $("new-source").hidden = true;
    renderSelected();
    renderOptions();
    $("src-name").focus();
    try {
      await loadFields();
      renderSelected();
      renderOptions();
    } catch (err) {
      showError(form, err);
    }
  }

  // The working calendar of StatusHistory: offered when the table is
  // ticked, sent only when "count working seconds" is.
  var weekDays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

  function showWorkingTime() {
    $("wt-field").hidden = !$("tbl-statushistory").checked;
    $("wt-calendar").hidden = !$("wt-on").checked;
  }

  function localZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      return "UTC";
    }
  }

  function fillWorkingTime(w) {
    $("wt-on").checked = !!w;
    var days = w ? w.days : ["mon", "tue", "wed", "thu", "fri"];
    weekDays.forEach(function (d) { $("wt-day-" + d).checked = days.indexOf(d) >= 0; });
    $("wt-start").value = w ? w.start : "09:00";
    $("wt-end").value = w ? w.end : "17:00";
    $("wt-zone").value = w ? w.timeZone : localZone();
    $("wt-holidays").value = w && w.holidays ? w.holidays.join(", ") : "";
    if (w) listZones();
    showWorkingTime();
  }

  var zonesListed = false;
  function listZones() {
    if (zonesListed || !Intl.supportedValuesOf) return;
    zonesListed = true;
    var list = clear($("zone-options"));
    Intl.supportedValuesOf("timeZone").forEach(function (z) { list.appendChild(el("option", { value: z })); });
  }

  function workingTimeInput() {
    if (!$("tbl-statushistory").checked || !$("wt-on").checked) return null;
    return {
      days: weekDays.filter(function (d) { return $("wt-day-" + d).checked; }),
      start: $("wt-start").value.trim(), end: $("wt-end").value.trim(), timeZone: $("wt-zone").value.trim(),
      holidays: splitList($("wt-holidays").value)
    };
  }

  // showVisibility shows the group names only when sharing with groups.
  function showVisibility() {
    $("vis-groups-field").hidden = !$("vis-groups").checked;
  }

  var groupsLoaded = false;
  async function loadGroupOptions() {
    if (groupsLoaded) return;
    groupsLoaded = true;
    try {
      var names = await api("GET", "/app-api/groups?query=");
      var list = clear($("group-options"));
      names.forEach(function (n) { list.appendChild(el("option", { value: n })); });
    } catch (err) {
      groupsLoaded = false; // Jira may not let this user browse groups: typing still works
    }
  }

  function splitList(v) {
    return v.split(/[\n,]/).map(function (x) { return x.trim(); }).filter(Boolean);
  }

  function closeForm() {
    $("source-form").hidden = true;
    $("new-source").hidden = !(me && me.canCreate);
    editing = null;
  }

  async function saveSource(ev) {
    ev.preventDefault();
    var form = $("source-form");
    clearErrors(form);
    var tables = [];
    document.querySelectorAll('input[name="tables"]').forEach(function (box) {
      if (box.checked) tables.push(box.value);
    });
    var vis = document.querySelector('input[name="visibility"]:checked').value;
    var body = { name: $("src-name").value, jql: $("src-jql").value, fields: selected.slice(), tables: tables,
      visibility: vis, groups: vis === "groups" ? splitList($("src-groups").value) : [], workingTime: workingTimeInput() };
    var inputs = { name: $("src-name"), jql: $("src-jql"), fields: $("field-search"), tables: $("tbl-issues"),
      visibility: $("vis-private"), groups: $("src-groups"), "workingTime.days": $("wt-day-mon"), "workingTime.start": $("wt-start"),
      "workingTime.end": $("wt-end"), "workingTime.timeZone": $("wt-zone"), "workingTime.holidays": $("wt-holidays") };
    if (vis === "groups" && body.groups.length === 0) return showError(form, new ApiError(400, { field: "groups", detail: "Name at least one Jira group to share the data source with." }), inputs);
    if (!body.name.trim()) return showError(form, new ApiError(400, { field: "name", detail: "Name the data source." }), inputs);
    if (!body.jql.trim()) return showError(form, new ApiError(400, { field: "jql", detail: "Enter a JQL query, for example: project = ABC ORDER BY created DESC" }), inputs);
    if (tables.length === 0) return showError(form, new ApiError(400, { field: "tables", detail: "Choose at least one table." }), inputs);
    if (body.fields.length === 0) return showError(form, new ApiError(400, { field: "fields", detail: "Pick at least one field." }), inputs);
    var btn = $("source-save");
    busy(btn, true);
    try {
      var saved = editing
        ? await api("PUT", "/app-api/sources/" + encodeURIComponent(editing.id), body)
        : await api("POST", "/app-api/sources", body);
      closeForm();
      await loadSources(saved.id);
    } catch (err) {
      showError(form, err, inputs);
    } finally {
      busy(btn, false);
    }
  }

  async function loadSources(focusID) {
    var box = $("sources");
    box.setAttribute("aria-busy", "true");
    try {
      sources = await api("GET", "/app-api/sources");
      renderSources(focusID);
    } catch (err) {
      clear(box).appendChild(el("p", { class: "form-error" }, "Data sources could not be loaded: " + err.message));
    } finally {
      box.setAttribute("aria-busy", "false");
    }
  }

  function renderSources(focusID) {
    var box = clear($("sources"));
    if (sources.length === 0) {
      box.appendChild(el("p", { class: "empty" }, me && me.canCreate
        ? "No data sources yet. Create one to get an OData feed and a CSV link for your BI tool."
        : "No data sources yet. Ask someone allowed to create data sources to add one."));
      return;
    }
    sources.forEach(function (s) { box.appendChild(sourceCard(s)); });
    if (focusID) {
      var h = box.querySelector('[data-id="' + CSS.escape(focusID) + '"] h3');
      if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
    }
  }

  function sourceCard(s) {
    var history = el("div", { class: "history", id: "hist-" + s.id, hidden: true, "aria-live": "polite" });
    var confirm = el("div", { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm deletion" });
    var actions = el("div", { class: "btn-group" });
    var histBtn = el("button", { type: "button", class: "btn btn-link", "data-action": "history", "aria-expanded": "false", "aria-controls": "hist-" + s.id }, "History");
    histBtn.addEventListener("click", function () { toggleHistory(s, history, histBtn); });
    actions.appendChild(histBtn);
    if (s.canEdit) {
      actions.appendChild(el("button", { type: "button", class: "btn", "data-action": "edit", onclick: function () { openForm(s); } }, "Edit"));
      actions.appendChild(el("button", { type: "button", class: "btn", "data-action": "delete", onclick: function () { askDelete(s, confirm); } }, "Delete"));
    }
    var fieldNames = s.fields.map(function (id) { return fieldsByID[id] ? fieldsByID[id].name : id; });
    return el("article", { class: "card source", "data-id": s.id, "aria-labelledby": "src-h-" + s.id },
      el("div", { class: "card-head" },
        el("div", null,
          el("h3", { id: "src-h-" + s.id }, s.name),
          el("p", { class: "meta" }, "Updated " + fmtTime(s.updated) + " · " + s.tables.join(", ") + " · " +
            s.fields.length + (s.fields.length === 1 ? " field" : " fields")),
          el("p", { class: "meta owner" }, "Owner: " + s.owner.displayName + " · " + visibilityLabel(s))),
        actions),
      el("code", { class: "jql", title: "JQL" }, s.jql),
      el("p", { class: "meta fields" }, "Fields: " + fieldNames.join(", ")),
      el("div", { class: "urls" },
        el("label", { for: "feed-" + s.id }, "OData feed"), copyRow("feed-" + s.id, "OData feed URL of " + s.name, s.feedUrl, "feed-url"),
        el("label", { for: "csv-" + s.id }, "CSV"), copyRow("csv-" + s.id, "CSV URL of " + s.name, s.csvUrl, "csv-url")),
      el("p", { class: "help" }, "Power BI / Excel: Get Data → OData feed, Basic authentication, any user name, your token as password."),
      confirm, history);
  }

  function visibilityLabel(s) {
    if (s.visibility === "everyone") return "Shared with everyone who may pull feeds";
    if (s.visibility === "groups") return "Shared with " + (s.groups || []).join(", ");
    return "Private to its owner";
  }

  async function toggleHistory(s, box, btn) {
    if (!box.hidden) {
      box.hidden = true;
      btn.setAttribute("aria-expanded", "false");
      return;
    }
    box.hidden = false;
    btn.setAttribute("aria-expanded", "true");
    clear(box).appendChild(el("p", { class: "loading" }, "Loading history…"));
    try {
      var full = await api("GET", "/app-api/sources/" + encodeURIComponent(s.id));
      clear(box).appendChild(el("h3", null, "History"));
      var list = el("ol");
      (full.history || []).forEach(function (h) { list.appendChild(el("li", null, historyLine(h))); });
      if (!list.firstChild) box.appendChild(el("p", { class: "empty" }, "No changes recorded."));
      else box.appendChild(list);
    } catch (err) {
      clear(box).appendChild(el("p", { class: "field-error" }, "History could not be loaded: " + err.message));
    }
  }

  function actionLabel(a) {
    return { created: "Created", edited: "Edited", deleted: "Deleted", transferred: "Transferred" }[a] || a;
  }

  function historyLine(h) {
    return actionLabel(h.action) + (h.to ? " to " + h.to : "") + " by " + h.by + ", " + fmtTime(h.at);
  }

  function askDelete(s, box) {
    clear(box);
    box.hidden = false;
    var yes = el("button", { type: "button", class: "btn btn-danger" }, "Delete");
    var no = el("button", { type: "button", class: "btn", onclick: function () { box.hidden = true; } }, "Cancel");
    var msg = el("p", null, "Delete \u201c" + s.name + "\u201d? BI tools using its feed stop getting data at once.");
    yes.addEventListener("click", async function () {
      busy(yes, true);
      try {
        await api("DELETE", "/app-api/sources/" + encodeURIComponent(s.id));
        await loadSources();
      } catch (err) {
        busy(yes, false);
        msg.textContent = "Not deleted: " + err.message;
      }
    });
    box.appendChild(msg);
    box.appendChild(yes);
    box.appendChild(no);
    no.focus();
  }

  // ---- tokens --------------------------------------------------------------

  async function loadTokens() {
    var box = $("tokens");
    box.setAttribute("aria-busy", "true");
    try {
      renderTokens(await api("GET", "/app-api/tokens"));
    } catch (err) {
      clear(box).appendChild(el("p", { class: "form-error" }, "Tokens could not be loaded: " + err.message));
    } finally {
      box.setAttribute("aria-busy", "false");
    }
  }

  function tokenStatus(t) {
    if (t.revoked) return el("span", { class: "pill pill-bad" }, "Revoked " + fmtDate(t.revoked));
    if (new Date(t.expires) <= new Date()) return el("span", { class: "pill" }, "Expired");
    return el("span", { class: "pill pill-ok" }, "Active");
  }

  function renderTokens(list) {
    var box = clear($("tokens"));
    if (list.length === 0) {
      box.appendChild(el("p", { class: "empty" }, "You have no tokens yet. Create one above, then paste it as the password in your BI tool."));
      return;
    }
    var body = el("tbody");
    list.forEach(function (t) {
      var cell = el("td");
      var live = !t.revoked && new Date(t.expires) > new Date();
      if (live) {
        var revoke = el("button", { type: "button", class: "btn btn-small", "aria-label": "Revoke " + t.label }, "Revoke");
        revoke.addEventListener("click", function () { askRevoke(t, cell); });
        cell.appendChild(revoke);
      }
      body.appendChild(el("tr", { class: t.revoked ? "revoked" : null, "data-token": t.id },
        el("td", null, t.label), el("td", null, el("code", null, t.hint)), el("td", null, fmtDate(t.created)),
        el("td", null, fmtDay(t.lastUsedDay)), el("td", null, fmtDate(t.expires)), el("td", null, tokenStatus(t)), cell));
    });
    box.appendChild(el("table", { class: "list" },
      el("caption", { class: "sr-only" }, "Your access tokens"),
      el("thead", null, el("tr", null,
        el("th", { scope: "col" }, "Label"), el("th", { scope: "col" }, "Token"), el("th", { scope: "col" }, "Created"),
        el("th", { scope: "col" }, "Last used"), el("th", { scope: "col" }, "Expires"), el("th", { scope: "col" }, "Status"),
        el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
      body));
  }

  function askRevoke(t, cell) {
    clear(cell);
    var yes = el("button", { type: "button", class: "btn btn-small btn-danger" }, "Revoke now");
    var no = el("button", { type: "button", class: "btn btn-small", onclick: function () { loadTokens(); } }, "Cancel");
    yes.addEventListener("click", async function () {
      busy(yes, true);
      try {
        await api("DELETE", "/app-api/tokens/" + encodeURIComponent(t.id));
      } catch (err) {
        pageError("The token was not revoked: " + err.message);
      }
      loadTokens();
    });
    cell.appendChild(el("span", { class: "btn-group" }, yes, no));
    yes.focus();
  }

  async function createToken(ev) {
    ev.preventDefault();
    var form = $("token-form");
    clearErrors(form);
    var inputs = { label: $("token-label"), days: $("token-days") };
    var label = $("token-label").value.trim();
    var days = parseInt($("token-days").value, 10);
    if (!label) return showError(form, new ApiError(400, { field: "label", detail: "Give the token a name, such as \u201cPower BI laptop\u201d." }), inputs);
    var max = me ? me.tokenMaxDays : 365;
    if (!(days >= 1 && days <= max)) return showError(form, new ApiError(400, { field: "days", detail: "Choose between 1 and " + max + " days." }), inputs);
    var btn = $("token-create");
    busy(btn, true);
    try {
      var t = await api("POST", "/app-api/tokens", { label: label, days: days });
      $("token-value").value = t.token;
      $("token-new").hidden = false;
      $("token-label").value = "";
      $("token-value").focus();
      $("token-value").select();
      await loadTokens();
    } catch (err) {
      showError(form, err, inputs);
    } finally {
      busy(btn, false);
    }
  }

  async function initDataSources() {
    $("source-form").addEventListener("submit", saveSource);
    document.querySelectorAll('input[name="visibility"]').forEach(function (r) {
      r.addEventListener("change", function () { showVisibility(); if ($("vis-groups").checked) loadGroupOptions(); });
    });
    $("tbl-statushistory").addEventListener("change", showWorkingTime);
    $("wt-on").addEventListener("change", function () { showWorkingTime(); if ($("wt-on").checked) listZones(); });
    $("source-cancel").addEventListener("click", closeForm);
    $("source-form").addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { closeForm(); $("new-source").focus(); }
    });
    $("new-source").addEventListener("click", function () { openForm(null); });
    $("field-search").addEventListener("input", renderOptions);
    $("field-search").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { // Enter adds the first match instead of submitting
        ev.preventDefault();
        var first = $("field-options").querySelector('button.pick[aria-pressed="false"]');
        if (first) first.click();
      }
    });
    $("token-form").addEventListener("submit", createToken);
    $("token-done").addEventListener("click", function () {
      $("token-value").value = "";
      $("token-new").hidden = true;
      $("token-label").focus();
    });
    try {
      await loadMe();
    } catch (err) {
      pageError("Ferry could not load your account: " + err.message);
      return;
    }
    $("new-source").hidden = !me.canCreate;
    $("cannot-create").hidden = me.canCreate;
    $("cannot-export").hidden = me.canExport;
    $("token-form").hidden = !me.canExport;
    if (me.exportProjects && me.exportProjects.length) {
      $("export-projects").textContent = "Your Jira administrator allows export only from the projects " +
        me.exportProjects.join(", ") + ": every feed returns issues of these projects only, whatever its JQL says.";
      $("export-projects").hidden = false;
    }
    var days = $("token-days");
    days.max = me.tokenMaxDays;
    days.value = Math.min(90, me.tokenMaxDays);
    $("days-help").textContent = "At most " + me.tokenMaxDays + " days, your site's policy.";
    // Field names for the cards come with the list of fields; load both.
    await Promise.all([loadSources(), loadTokens(), loadFields().catch(function () {})]);
    if (fields && sources.length) renderSources();
  }

  // ---- admin page ----------------------------------------------------------

  // People pickers: chips of chosen users (by accountId, shown by display
  // name) and a search that asks Jira through /app-api/users.
  var people = {};

  function peoplePicker(box, key) {
    var chosen = [];
    var chips = el("ul", { class: "chips", "aria-label": "Chosen people" });
    var input = el("input", { type: "search", id: key + "-user-search", autocomplete: "off", placeholder: "Find a person by name",
      "aria-label": "Find a person by name" });
    var results = el("ul", { class: "picker-options", "aria-label": "People found" });
    function render() {
      clear(chips);
      chosen.forEach(function (p, i) {
        chips.appendChild(el("li", { class: "chip", "data-account": p.accountId }, p.displayName,
          el("button", { type: "button", class: "btn btn-small", "aria-label": "Remove " + p.displayName,
            onclick: function () { chosen.splice(i, 1); render(); } }, "×")));
      });
    }
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { clear(results); return; }
      timer = setTimeout(async function () {
        try {
          var found = await api("GET", "/app-api/users?query=" + encodeURIComponent(q));
          clear(results);
          found.forEach(function (p) {
            if (chosen.some(function (c) { return c.accountId === p.accountId; })) return;
            results.appendChild(el("li", null, el("button", { type: "button", class: "pick", "data-account": p.accountId,
              onclick: function () { chosen.push(p); render(); clear(results); input.value = ""; input.focus(); } },
              el("span", { class: "fname" }, "+ " + p.displayName))));
          });
          if (!found.length) results.appendChild(el("li", { class: "empty" }, "Nobody found."));
        } catch (err) {
          clear(results).appendChild(el("li", { class: "field-error" }, err.message));
        }
      }, 200);
    });
    box.appendChild(chips);
    box.appendChild(input);
    box.appendChild(results);
    people[key] = {
      set: function (list) { chosen = (list || []).slice(); render(); },
      get: function () { return chosen.map(function (p) { return p.accountId; }); },
      input: input
    };
  }

  function setAudience(key, a) {
    var mode = a.everyone ? "everyone" : ((a.groups && a.groups.length) || (a.users && a.users.length) ? "some" : "admins");
    document.querySelector('input[name="' + key + '-mode"][value="' + mode + '"]').checked = true;
    $(key + "-groups").value = (a.groups || []).join("\n");
    people[key].set(a.users);
    showAudience(key);
  }

  function showAudience(key) {
    var mode = document.querySelector('input[name="' + key + '-mode"]:checked').value;
    $("aud-" + key).querySelector(".audience-some").hidden = mode !== "some";
  }

  function getAudience(key) {
    var mode = document.querySelector('input[name="' + key + '-mode"]:checked').value;
    if (mode === "everyone") return { everyone: true, groups: [], users: [] };
    if (mode === "admins") return { everyone: false, groups: [], users: [] };
    return { everyone: false, groups: splitList($(key + "-groups").value), users: people[key].get() };
  }

  function fillSettings(st) {
    setAudience("creators", st.creators);
    setAudience("exporters", st.exporters);
    $("set-projects").value = (st.projects || []).map(function (p) { return p.key; }).join("\n");
    $("set-networks").value = (st.allowedNetworks || []).join("\n");
    $("set-days").value = st.tokenMaxDays;
    $("set-days").max = st.maxTokenMaxDays;
    $("maxdays-help").textContent = "1 to " + st.maxTokenMaxDays + " days. Existing tokens are cut to the new limit.";
  }

  async function initAdmin() {
    var form = $("settings-form");
    var inputs = { "creators.groups": $("creators-groups"), "exporters.groups": $("exporters-groups"),
      "creators.users": null, "exporters.users": null, projects: $("set-projects"),
      allowedNetworks: $("set-networks"), tokenMaxDays: $("set-days") };
    loadMe().catch(function () {});
    var st;
    try {
      st = await api("GET", "/app-api/settings");
    } catch (err) {
      $("settings-loading").hidden = true;
      var note = $("not-admin");
      note.textContent = err.status === 403
        ? "Only Jira administrators can see and change Ferry's settings. Ask a Jira administrator if you should be allowed to create data sources or pull feeds."
        : "Settings could not be loaded: " + err.message;
      note.hidden = false;
      return;
    }
    $("settings-loading").hidden = true;
    initDeletion();
    initQuota();
    ["creators", "exporters"].forEach(function (key) {
      peoplePicker(document.querySelector('[data-people="' + key + '"]'), key);
      inputs[key + ".users"] = people[key].input;
      document.querySelectorAll('input[name="' + key + '-mode"]').forEach(function (r) {
        r.addEventListener("change", function () { showAudience(key); });
      });
    });
    fillSettings(st);
    form.hidden = false;
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      clearErrors(form);
      $("settings-status").textContent = "";
      var days = parseInt($("set-days").value, 10);
      if (!(days >= 1 && days <= st.maxTokenMaxDays)) {
        return showError(form, new ApiError(400, { field: "tokenMaxDays", detail: "Choose between 1 and " + st.maxTokenMaxDays + " days." }), inputs);
      }
      var body = { creators: getAudience("creators"), exporters: getAudience("exporters"),
        projects: splitList($("set-projects").value), allowedNetworks: splitList($("set-networks").value), tokenMaxDays: days };
      var btn = $("settings-save");
      busy(btn, true);
      try {
        st = await api("PUT", "/app-api/settings", body);
        fillSettings(st);
        $("settings-status").textContent = "Saved.";
      } catch (err) {
        showError(form, err, inputs);
      } finally {
        busy(btn, false);
      }
    });
    $("tokens-panel").hidden = false;
    $("sources-panel").hidden = false;
    await Promise.all([loadAllTokens(), loadAllSources()]);
  }

  // ---- every token of the site (admin page) --------------------------------

  async function loadAllTokens() {
    var box = $("all-tokens");
    box.setAttribute("aria-busy", "true");
    try {
      var list = await api("GET", "/app-api/admin/tokens");
      renderAllTokens(list);
    } catch (err) {
      clear(box).appendChild(el("p", { class: "form-error" }, "Tokens could not be loaded: " + err.message));
    } finally {
      box.setAttribute("aria-busy", "false");
    }
    loadTokenHistory();
  }

  function statusPill(t) {
    if (t.status === "revoked") return el("span", { class: "pill pill-bad" }, "Revoked " + fmtDate(t.revoked));
    if (t.status === "expired") return el("span", { class: "pill" }, "Expired");
    return el("span", { class: "pill pill-ok" }, "Active");
  }

  function renderAllTokens(list) {
    var box = clear($("all-tokens"));
    var owners = clear($("token-owners"));
    if (list.length === 0) {
      box.appendChild(el("p", { class: "empty" }, "Nobody has created a token yet."));
      return;
    }
    // Revoke all of one person's live tokens.
    var live = {};
    list.forEach(function (t) {
      if (t.status !== "active") return;
      var o = live[t.owner.accountId] || (live[t.owner.accountId] = { owner: t.owner, n: 0 });
      o.n++;
    });
    Object.keys(live).forEach(function (id) {
      var o = live[id];
      var btn = el("button", { type: "button", class: "btn btn-small", "data-action": "revoke-all", "data-account": id },
        "Revoke all of " + o.owner.displayName + "’s tokens (" + o.n + " active)");
      btn.addEventListener("click", function () {
        confirmInline(btn.parentNode, "Revoke every active token of " + o.owner.displayName + "? Their feeds stop at once.", "Revoke all", async function () {
          var res = await api("DELETE", "/app-api/admin/users/" + encodeURIComponent(id) + "/tokens");
          $("settings-status").textContent = "";
          return res;
        }, loadAllTokens);
      });
      owners.appendChild(el("p", { class: "owner-row" }, btn));
    });
    var body = el("tbody");
    list.forEach(function (t) {
      var cell = el("td");
      if (t.status === "active") {
        var revoke = el("button", { type: "button", class: "btn btn-small", "data-action": "revoke", "aria-label": "Revoke " + t.label + " of " + t.owner.displayName }, "Revoke");
        revoke.addEventListener("click", function () {
          confirmInline(cell, "Revoke?", "Revoke now", function () {
            return api("DELETE", "/app-api/admin/tokens/" + encodeURIComponent(t.id));
          }, loadAllTokens);
        });
        cell.appendChild(revoke);
      }
      body.appendChild(el("tr", { class: t.status === "revoked" ? "revoked" : null, "data-token": t.id, "data-owner": t.owner.accountId },
        el("td", null, t.owner.displayName), el("td", null, t.label), el("td", null, el("code", null, t.hint)),
        el("td", null, fmtDate(t.created)), el("td", null, fmtDay(t.lastUsedDay)), el("td", null, fmtDate(t.expires)),
        el("td", null, statusPill(t)), cell));
    });
    box.appendChild(el("table", { class: "list" },
      el("caption", { class: "sr-only" }, "Access tokens on this site"),
      el("thead", null, el("tr", null,
        el("th", { scope: "col" }, "Owner"), el("th", { scope: "col" }, "Label"), el("th", { scope: "col" }, "Token"),
        el("th", { scope: "col" }, "Created"), el("th", { scope: "col" }, "Last used"), el("th", { scope: "col" }, "Expires"),
        el("th", { scope: "col" }, "Status"), el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
      body));
  }

  // confirmInline replaces box's content with a question and two buttons;
  // yes runs act, then done.
  function confirmInline(box, question, yesLabel, act, done) {
    var saved = Array.prototype.slice.call(box.childNodes);
    clear(box);
    var msg = el("span", { class: "confirm-q" }, question + " ");
    var yes = el("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "confirm" }, yesLabel);
    var no = el("button", { type: "button", class: "btn btn-small", onclick: function () {
      clear(box); saved.forEach(function (n) { box.appendChild(n); });
    } }, "Cancel");
    yes.addEventListener("click", async function () {
      busy(yes, true);
      try {
        await act();
      } catch (err) {
        pageError("Not done: " + err.message);
      }
      done();
    });
    box.appendChild(el("span", { class: "btn-group" }, msg, yes, no));
    yes.focus();
  }

  async function loadTokenHistory() {
    var box = $("token-history");
    try {
      var list = await api("GET", "/app-api/admin/token-history");
      clear(box);
      if (list.length === 0) {
        box.appendChild(el("p", { class: "empty" }, "No token history yet."));
        return;
      }
      var body = el("tbody");
      list.forEach(function (e) {
        body.appendChild(el("tr", { "data-kind": e.kind, "data-token": e.tokenId },
          el("td", null, fmtTime(e.at)), el("td", null, { created: "Created", revoked: "Revoked", expired: "Expired" }[e.kind] || e.kind),
          el("td", null, e.label ? e.label + " " : "", e.hint ? el("code", null, e.hint) : "(deleted)"),
          el("td", null, e.owner && e.owner.displayName ? e.owner.displayName : ""), el("td", null, e.by)));
      });
      box.appendChild(el("table", { class: "list" },
        el("caption", { class: "sr-only" }, "Token history"),
        el("thead", null, el("tr", null, el("th", { scope: "col" }, "When"), el("th", { scope: "col" }, "What"),
          el("th", { scope: "col" }, "Token"), el("th", { scope: "col" }, "Owner"), el("th", { scope: "col" }, "By"))),
        body));
    } catch (err) {
      clear(box).appendChild(el("p", { class: "form-error" }, "History could not be loaded: " + err.message));
    }
  }

  // ---- every data source and its owner (admin page) -------------------------

  async function loadAllSources() {
    var box = $("all-sources");
    try {
      var list = await api("GET", "/app-api/sources");
      clear(box);
      if (list.length === 0) box.appendChild(el("p", { class: "empty" }, "No data sources yet."));
      else {
        var body = el("tbody");
        list.forEach(function (s) {
          var cell = el("td");
          var btn = el("button", { type: "button", class: "btn btn-small", "data-action": "transfer" }, "Transfer");
          btn.addEventListener("click", function () { askTransfer(s, cell); });
          cell.appendChild(btn);
          body.appendChild(el("tr", { "data-id": s.id }, el("td", null, s.name), el("td", { class: "owner" }, s.owner.displayName),
            el("td", null, visibilityLabel(s)), el("td", null, fmtTime(s.updated)), cell));
        });
        box.appendChild(el("table", { class: "list" },
          el("caption", { class: "sr-only" }, "Data sources and their owners"),
          el("thead", null, el("tr", null, el("th", { scope: "col" }, "Data source"), el("th", { scope: "col" }, "Owner"),
            el("th", { scope: "col" }, "Shared with"), el("th", { scope: "col" }, "Updated"),
            el("th", { scope: "col" }, el("span", { class: "sr-only" }, "Actions")))),
          body));
      }
    } catch (err) {
      clear(box).appendChild(el("p", { class: "form-error" }, "Data sources could not be loaded: " + err.message));
    }
    try {
      var gone = await api("GET", "/app-api/admin/deleted-sources");
      var dbox = clear($("deleted-sources"));
      if (gone.length === 0) dbox.appendChild(el("p", { class: "empty" }, "None."));
      var ul = el("ul", { class: "plain" });
      gone.forEach(function (d) {
        var last = d.history && d.history[0];
        ul.appendChild(el("li", { "data-id": d.id }, "\u201c" + d.name + "\u201d, owned by " + d.owner.displayName +
          (last ? ": " + historyLine(last) : "")));
      });
      if (gone.length) dbox.appendChild(ul);
    } catch (err) {
      clear($("deleted-sources")).appendChild(el("p", { class: "form-error" }, "Deleted data sources could not be loaded: " + err.message));
    }
  }

  function askTransfer(s, cell) {
    clear(cell);
    var input = el("input", { type: "search", autocomplete: "off", placeholder: "New owner's name", "aria-label": "New owner of " + s.name });
    var results = el("ul", { class: "picker-options", "aria-label": "People found" });
    var err = el("p", { class: "field-error", hidden: true });
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var q = input.value.trim();
      if (!q) { clear(results); return; }
      timer = setTimeout(async function () {
        try {
          var found = await api("GET", "/app-api/users?query=" + encodeURIComponent(q));
          clear(results);
          found.forEach(function (p) {
            results.appendChild(el("li", null, el("button", { type: "button", class: "pick", "data-account": p.accountId,
              onclick: async function () {
                try {
                  await api("PUT", "/app-api/sources/" + encodeURIComponent(s.id) + "/owner", { accountId: p.accountId });
                  loadAllSources();
                } catch (e) {
                  err.textContent = e.message;
                  err.hidden = false;
                }
              } }, el("span", { class: "fname" }, "Make " + p.displayName + " the owner"))));
          });
          if (!found.length) results.appendChild(el("li", { class: "empty" }, "Nobody found."));
        } catch (e) {
          err.textContent = e.message;
          err.hidden = false;
        }
      }, 200);
    });
    cell.appendChild(input);
    cell.appendChild(results);
    cell.appendChild(err);
    cell.appendChild(el("button", { type: "button", class: "btn btn-small", onclick: loadAllSources }, "Cancel"));
    input.focus();
  }

  // ---- Jira API quota (admin page) --------------------------------------------

  function utc(iso) { return String(iso).replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, " UTC"); }

  // initQuota shows administrators what Ferry spent of Jira's points quota
  // today, per data source, and the exports the quota refused.
  async function initQuota() {
    var q;
    try {
      q = await api("GET", "/app-api/quota");
    } catch (err) {
      return;
    }
    var pool = q.pool === "site" ? "this site's hourly pool" : "Ferry's hourly pool, shared by every site using Ferry";
    var summary = "Ferry spent " + q.spentToday.toLocaleString("en") + " points of Jira's API quota for this site today.";
    if (q.known) {
      summary += " Jira's " + pool + " holds " + q.quota.toLocaleString("en") + " points; " +
        (q.reported ? "" : "at least ") + q.remaining.toLocaleString("en") + " remain" +
        (q.reset ? " until " + utc(q.reset) : "") + ": enough for an export of about " +
        q.fitsIssues.toLocaleString("en") + " issues. Larger exports are refused until the pool refills, with a message saying so.";
    }
    $("quota-summary").textContent = summary;
    $("quota-pacing").hidden = !q.pacing;
    var rows = q.sources.slice();
    if (q.otherPoints) rows.push({ name: "The app's pages and Jira metadata", points: q.otherPoints });
    if (rows.length) {
      var tb = clear($("quota-sources").querySelector("tbody"));
      rows.forEach(function (s) {
        tb.appendChild(el("tr", null, el("td", { text: s.name }), el("td", { class: "num", text: s.points.toLocaleString("en") })));
      });
      $("quota-sources").hidden = false;
    }
    if (q.refused.length) {
      var rb = clear($("quota-refused").querySelector("tbody"));
      q.refused.slice().reverse().forEach(function (r) {
        rb.appendChild(el("tr", null, el("td", { text: utc(r.at) }), el("td", { text: r.source }),
          el("td", { class: "num", text: r.need.toLocaleString("en") }), el("td", { class: "num", text: r.remaining.toLocaleString("en") })));
      });
      $("quota-refused").hidden = false;
    }
    $("quota-note").textContent = q.note;
    $("quota-panel").hidden = false;
  }

  // ---- immediate deletion (admin page) ---------------------------------------

  // initDeletion shows the deletion panel to administrators: the button
  // works only once the site's host name is typed, and the server checks it
  // again.
  async function initDeletion() {
    var info;
    try {
      info = await api("GET", "/app-api/deletion");
    } catch (err) {
      return; // not an administrator, or not offered: no panel
    }
    if (info.purgeGraceDays !== undefined) {
      var grace = $("purge-grace-note");
      grace.textContent = "If the app is uninstalled, Ferry deletes all it keeps for this site " + info.purgeGraceDays +
        " days later; reinstalling before then keeps your tokens working.";
      grace.hidden = false;
    }
    var form = $("delete-form"), input = $("delete-host"), btn = $("delete-submit");
    $("delete-host-name").textContent = info.siteHost;
    $("delete-panel").hidden = false;
    var matches = function () { return input.value.trim().toLowerCase() === String(info.siteHost).toLowerCase(); };
    input.addEventListener("input", function () { btn.disabled = !matches(); });
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      clearErrors(form);
      if (!matches()) return;
      busy(btn, true);
      try {
        var res = await api("POST", "/app-api/deletion", { siteHost: input.value.trim() });
        form.hidden = true;
        $("settings-form").hidden = true;
        var done = $("delete-done");
        done.textContent = res.message;
        done.hidden = false;
      } catch (err) {
        showError(form, err, { siteHost: input });
        busy(btn, false);
      }
    });
  }

  function start() {
    var page = document.body.getAttribute("data-page");
    if (page === "data-sources") initDataSources();
    else if (page === "admin") initAdmin();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
