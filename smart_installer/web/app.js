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

function renderDeployment(d) {
  current = d;
  const problems = $("#problems");
  problems.replaceChildren(...d.problems.map((p) => el("li", p)));
  const tbody = $("#nodes tbody");
  tbody.replaceChildren();
  for (const n of d.nodes) {
    const tr = el("tr");
    tr.dataset.node = n.id;
    const inv = n.inventory;
    tr.append(el("td", n.id), el("td", n.hostname));
    tr.append(el("td", inv.cpus + " CPU, " + (inv.virt === "none" ? "no vmx/svm" : inv.virt) +
      ", " + inv.mem_mb + " MB"));
    tr.append(el("td", inv.nics.map((c) => c.name + " " + c.mac + " " + c.state).join("\n")));
    tr.append(el("td", inv.disks.map((k) => k.name + " " + k.size_mb + " MB " +
      (k.free ? "free" : "in use")).join("\n")));
    const td = el("td");
    const sel = el("select", null, "roles");
    sel.append(new Option("(none)", ""));
    for (const c of roleChoices()) sel.append(new Option(c, c, false, c === n.roles.join(",")));
    sel.value = n.roles.join(",");
    const btn = el("button", "Assign", "assign");
    btn.type = "button";
    btn.addEventListener("click", () => assign(n.id, sel.value));
    td.append(sel, btn);
    if (n.pending) {
      const box = el("div", "registered again without its token as " +
        n.pending.inventory.hostname + ": ", "note pending");
      for (const [label, action] of [["Approve", "approve"], ["Reject", "reject"]]) {
        const b = el("button", label, action);
        b.type = "button";
        b.addEventListener("click", () => decide(n.id, action));
        box.append(b);
      }
      td.append(box);
    }
    for (const note of n.notes) td.append(el("div", note, "note"));
    if (n.missing.length) td.append(el("div", "waiting for: " + n.missing.join(", "), "note"));
    tr.append(td);
    tr.append(el("td", n.state, "state " + n.state));
    tr.append(el("td", n.step, "step"));
    tbody.append(tr);
  }
}

async function assign(id, roles) {
  showError("");
  $("#assign-msg").textContent = "";
  try {
    const n = await api("PUT", "/api/deployments/" + current.name + "/nodes/" + id + "/roles",
      { roles: roles ? roles.split(",") : [] });
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
