// StackOps Smart Installer: the admin's browser UI. It calls the JSON API (/api/...) and builds
// the page with textContent only (never innerHTML): what nodes report cannot inject markup.
"use strict";

const $ = (sel) => document.querySelector(sel);
let architectures = [];
let current = null;   // the deployment shown
let timer = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function showError(msg) {
  const p = $("#error");
  p.textContent = msg || "";
  p.hidden = !msg;
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const ctype = resp.headers.get("Content-Type") || "";
  const data = ctype.startsWith("application/json") ? await resp.json() : await resp.text();
  if (resp.status === 401 && path !== "/api/login") {
    show("login");
    throw new Error("log in first");
  }
  if (!resp.ok) {
    const msg = data && data.error ? data.error + (data.hint ? " (" + data.hint + ")" : "") : resp.statusText;
    throw new Error(msg);
  }
  return data;
}

function show(view) {
  for (const v of ["login", "list", "deployment"]) $("#" + v + "-view").hidden = v !== view;
  $("#logout").hidden = view === "login";
  if (view !== "deployment" && timer) { clearInterval(timer); timer = null; }
}

async function route() {
  showError("");
  const m = location.hash.match(/^#d\/([a-z0-9-]+)$/);
  try {
    const me = await api("GET", "/api/whoami");
    $("#whoami").textContent = me.username;
    architectures = await api("GET", "/api/architectures");
    if (m) await openDeployment(m[1]); else await listDeployments();
  } catch (e) {
    if (e.message !== "log in first") showError(e.message);
  }
}

async function listDeployments() {
  show("list");
  const deps = await api("GET", "/api/deployments");
  const tbody = $("#deployments tbody");
  tbody.replaceChildren();
  for (const d of deps) {
    const tr = el("tr");
    const a = el("a", d.name, "dep-link");
    a.href = "#d/" + d.name;
    a.dataset.name = d.name;
    const td = el("td"); td.append(a); tr.append(td);
    tr.append(el("td", d.architecture), el("td", d.node_count));
    tbody.append(tr);
  }
}

async function openDeployment(name) {
  show("deployment");
  const d = await api("GET", "/api/deployments/" + name);
  current = d;
  $("#dep-name").textContent = d.name;
  $("#dep-arch").textContent = d.architecture;
  $("#export-link").href = "/api/deployments/" + d.name + "/export";
  renderParams(d);
  $("#nodes tbody").replaceChildren();  // rows of the deployment shown before
  renderDeployment(d);
  if (timer) clearInterval(timer);
  timer = setInterval(refresh, 2000);
}

async function refresh() {
  if (!current) return;
  try {
    renderDeployment(await api("GET", "/api/deployments/" + current.name));
  } catch (e) { showError(e.message); }
}

function renderParams(d) {
  const tbody = $("#params tbody");
  tbody.replaceChildren();
  for (const [key, p] of Object.entries(d.params)) {
    const tr = el("tr");
    tr.append(el("th", p.prompt));
    const input = el("input");
    input.name = "param-" + key;
    input.dataset.key = key;
    if (p.secret) {
      input.type = "password";
      input.autocomplete = "new-password";
      input.placeholder = p.set ? "(set; type to change)" : "(not set)";
    } else {
      input.value = p.value || "";
      input.placeholder = p.default ? "default " + p.default : "";
    }
    const td = el("td"); td.append(input); tr.append(td);
    tr.append(el("td", key, "help"));
    tbody.append(tr);
  }
}

function roleChoices() {
  const arch = architectures.find((a) => a.name === current.architecture);
  return arch ? arch.shapes.map((s) => s.roles.join(",")) : [];
}

// States in which the service refuses a role change (store.py set_roles): the controls are
// disabled then, so the admin is not offered what would be refused.
const LOCKED_STATES = ["configuring", "done"];

function setText(node, text) {
  const t = text === undefined || text === null ? "" : String(text);
  if (node.textContent !== t) node.textContent = t;
}

// The nodes table is updated in place, row by row and cell by cell, never rebuilt: a select the
// admin is using (focused) or has changed and not yet assigned keeps its value and its focus
// through every refresh.
function nodeRow(n) {
  const tbody = $("#nodes tbody");
  let tr = tbody.querySelector("tr[data-node='" + n.id + "']");
  if (tr) return tr;
  tr = el("tr");
  tr.dataset.node = n.id;
  for (const cls of ["id", "host", "hw", "nics", "disks"]) tr.append(el("td", null, cls));
  const td = el("td", null, "roles");
  const sel = el("select", null, "roles");
  sel.append(new Option("(none)", ""));
  for (const c of roleChoices()) sel.append(new Option(c, c));
  sel.dataset.server = "";
  sel.addEventListener("change", () => {
    sel.dataset.edited = sel.value !== sel.dataset.server ? "1" : "";
  });
  const btn = el("button", "Assign", "assign");
  btn.type = "button";
  btn.addEventListener("click", () => assign(n.id, sel));
  const extra = el("div", null, "extra");
  td.append(sel, btn, extra);
  tr.append(td, el("td", null, "state"), el("td", null, "step"));
  tbody.append(tr);
  return tr;
}

function renderExtra(box, n) {
  // Rebuilt only when what it shows changed (it holds the Approve/Reject buttons).
  const key = JSON.stringify([n.pending ? n.pending.inventory.hostname : null, n.notes, n.missing]);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren();
  if (n.pending) {
    const p = el("div", "registered again without its token as " +
      n.pending.inventory.hostname + ": ", "note pending");
    for (const [label, action] of [["Approve", "approve"], ["Reject", "reject"]]) {
      const b = el("button", label, action);
      b.type = "button";
      b.setAttribute("aria-label", label + " node " + n.id);
      b.addEventListener("click", () => decide(n.id, action));
      p.append(b);
    }
    box.append(p);
  }
  for (const note of n.notes) box.append(el("div", note, "note"));
  if (n.missing.length) box.append(el("div", "waiting for: " + n.missing.join(", "), "note"));
}

function renderDeployment(d) {
  current = d;
  const problems = $("#problems");
  const pkey = JSON.stringify(d.problems);
  if (problems.dataset.key !== pkey) {
    problems.dataset.key = pkey;
    problems.replaceChildren(...d.problems.map((p) => el("li", p)));
  }
  const seen = new Set();
  for (const n of d.nodes) {
    seen.add(String(n.id));
    const tr = nodeRow(n);
    const cell = (cls) => tr.querySelector("td." + cls);
    const inv = n.inventory;
    setText(cell("id"), n.id);
    setText(cell("host"), n.hostname);
    setText(cell("hw"), inv.cpus + " CPU, " + (inv.virt === "none" ? "no vmx/svm" : inv.virt) +
      ", " + inv.mem_mb + " MB");
    setText(cell("nics"), inv.nics.map((c) => c.name + " " + c.mac + " " + c.state).join("\n"));
    setText(cell("disks"), inv.disks.map((k) => k.name + " " + k.size_mb + " MB " +
      (k.free ? "free" : "in use")).join("\n"));
    const sel = tr.querySelector("select.roles");
    const btn = tr.querySelector("button.assign");
    const roles = n.roles.join(",");
    sel.dataset.server = roles;
    const label = "node " + n.id + " (" + n.hostname + ")";
    sel.setAttribute("aria-label", "Roles of " + label);
    btn.setAttribute("aria-label", "Assign the chosen roles to " + label);
    // Never overwrite what the admin is choosing: a focused or edited select keeps its value.
    if (document.activeElement !== sel && !sel.dataset.edited && sel.value !== roles) {
      sel.value = roles;
    }
    const locked = LOCKED_STATES.includes(n.state);
    sel.disabled = locked;
    btn.disabled = locked;
    btn.title = locked ? "node is " + n.state + ": its roles can no longer change" : "";
    renderExtra(tr.querySelector("div.extra"), n);
    const state = cell("state");
    setText(state, n.state);
    if (state.className !== "state " + n.state) state.className = "state " + n.state;
    setText(cell("step"), n.step);
  }
  for (const tr of [...$("#nodes tbody").children]) {
    if (!seen.has(tr.dataset.node)) tr.remove();
  }
}

async function assign(id, sel) {
  showError("");
  $("#assign-msg").textContent = "";
  const roles = sel.value;
  const had = sel.dataset.server;
  if (!roles && had) {
    const host = (current.nodes.find((n) => n.id === id) || {}).hostname || "";
    if (!confirm("Unassign node " + id + " (" + host + ")? It loses its roles (" + had + ").")) {
      sel.value = had;
      sel.dataset.edited = "";
      return;
    }
  }
  try {
    const n = await api("PUT", "/api/deployments/" + current.name + "/nodes/" + id + "/roles",
      { roles: roles ? roles.split(",") : [] });
    sel.dataset.edited = "";
    $("#assign-msg").textContent = "node " + n.id + ": " + (n.roles.join(",") || "no roles") +
      (n.notes.length ? " (" + n.notes.join("; ") + ")" : "");
    await refresh();
  } catch (e) { showError(e.message); }
}

async function decide(id, action) {
  showError("");
  try {
    await api("POST", "/api/deployments/" + current.name + "/nodes/" + id + "/" + action);
    await refresh();
  } catch (e) { showError(e.message); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    try {
      await api("POST", "/api/login",
        { username: $("#login-user").value, password: $("#login-password").value });
      $("#login-password").value = "";
      await route();
    } catch (e) { showError(e.message); }
  });
  $("#logout").addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } catch (e) { /* already out */ }
    show("login");
  });
  $("#new-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    try {
      const r = await api("POST", "/api/deployments",
        { name: $("#new-name").value, architecture: $("#new-arch").value });
      $("#token-dep").textContent = r.deployment.name;
      $("#token-value").textContent = r.enrolment_token;
      $("#token-box").hidden = false;
      $("#new-name").value = "";
      await listDeployments();
    } catch (e) { showError(e.message); }
  });
  $("#params-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const values = {};
    for (const input of document.querySelectorAll("#params input")) {
      const p = current.params[input.dataset.key];
      if (p.secret) { if (input.value) values[input.dataset.key] = input.value; }
      else if ((p.value || "") !== input.value) values[input.dataset.key] = input.value || null;
    }
    if (!Object.keys(values).length) { $("#params-msg").textContent = "nothing changed"; return; }
    try {
      const d = await api("PUT", "/api/deployments/" + current.name + "/params", values);
      renderParams(d);
      renderDeployment(d);
      $("#params-msg").textContent = "saved";
      $("#params-msg").className = "ok";
    } catch (e) {
      $("#params-msg").textContent = "";
      showError(e.message);
    }
  });
  window.addEventListener("hashchange", route);
  route();
});
