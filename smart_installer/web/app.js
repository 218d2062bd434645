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
    const err = new Error(msg);
    err.fields = data && data.fields ? data.fields : null;  // refusals by key (InvalidFields)
    throw err;
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
  // Open while a required parameter is missing; once all are set it starts folded, so the
  // nodes are above the fold. Only here: after that the admin's own open/close is kept.
  $("#params-box").open = paramsMissing(d).length > 0;
  renderOnboarding(d.name);
  $("#nodes tbody").replaceChildren();  // rows of the deployment shown before
  closeNode();
  $("#rotated-box").hidden = true;
  renderDeployment(d);
  actionsDeployment(d);  // actions.js: cloud ready
  if (timer) clearInterval(timer);
  timer = setInterval(refresh, 2000);
}

// --- onboarding: the build command, the iPXE boot file, the dnsmasq block ------------------
let shownToken = null;  // the enrolment token, when this page made it (it is never shown again)

function renderBuild(name) {
  const token = shownToken && shownToken.dep === name ? shownToken.token : null;
  const lines = [
    "STACKOPS_INSTALLER_TOKEN=" + (token || "<the enrolment token>") + " \\",
    "  distro-builder build --base ubuntu-10.04.4-server-amd64.iso -o stackops.iso \\",
    // the disc's menu: this deployment's architecture's entries only
    "  --architecture " + (current ? current.architecture : "<architecture>") + " \\",
    "  --installer-url " + location.origin,
  ];
  setText($("#build-cmd"), lines.join("\n"));
  setText($("#build-token-note"), token ? "The token above is shown only now: keep it." :
    "The token was shown when the deployment was made; \"New enrolment token\" makes another " +
    "(discs with the old one stop registering).");
}

function dnsmasqBlock(bootfile) {
  const host = new URL(bootfile).hostname;
  const quad = /^(\d+)\.(\d+)\.(\d+)\.\d+$/.exec(host);
  const subnet = quad ? quad[1] + "." + quad[2] + "." + quad[3] + ".0" : "10.0.0.0";
  return [
    "# plain PXE ROMs chainload iPXE over TFTP (/srv/tftp/undionly.kpxe from the ipxe package),",
    "# iPXE itself gets this deployment's URL",
    "port=0",
    "dhcp-range=" + subnet + ",proxy",
    "dhcp-userclass=set:ipxe,iPXE",
    "pxe-service=tag:!ipxe,x86PC,\"iPXE\",undionly.kpxe",
    "pxe-service=tag:ipxe,x86PC,\"StackOps\"," + bootfile,
    "enable-tftp",
    "tftp-root=/srv/tftp",
  ].join("\n");
}

async function renderOnboarding(name) {
  renderBuild(name);
  let nb = null;
  try { nb = await api("GET", "/api/deployments/" + name + "/netboot"); } catch (e) { nb = null; }
  $("#netboot-off").hidden = !!nb;
  $("#netboot-on").hidden = !nb;
  if (!nb) return;
  setText($("#bootfile"), nb.bootfile);
  $("#netboot-unknown").value = nb.unknown;
  setText($("#dnsmasq-block"), dnsmasqBlock(nb.bootfile));
}

async function refresh() {
  if (!current) return;
  try {
    const d = await api("GET", "/api/deployments/" + current.name);
    renderDeployment(d);
    updateParams(d);
    actionsDeployment(current);  // actions.js: cloud ready
    await refreshNode();
  } catch (e) { showError(e.message); }
}

// The parameters form in three groups, by the question's type; required ones marked from the
// start; the role.yaml description as each field's help; a refusal beside its field.
const GROUPS = [
  ["network", "Network", ["ipv4", "cidr", "int", "interface", "device", "hostname"]],
  ["passwords", "Passwords", ["password"]],
  ["identity", "Identity", ["name", "string", "choice"]],
];
const MIN_GENERATED = 20;

function generatePassword(length) {
  // Letters and digits (no look-alikes) from the browser's CSPRNG, without modulo bias (a byte
  // at or above the largest multiple of the alphabet's size is drawn again). No `$` (Nova
  // 2011.2 expands $name in flag values, nova/flags.py:139-141), no quotes, no spaces.
  const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  const limit = 256 - (256 % alphabet.length);
  const out = [];
  while (out.length < length) {
    const bytes = new Uint8Array(length * 2);
    crypto.getRandomValues(bytes);
    for (const b of bytes) {
      if (b < limit && out.length < length) out.push(alphabet[b % alphabet.length]);
    }
  }
  return out.join("");
}

function paramsMissing(d) {
  return Object.entries(d.params)
    .filter(([, p]) => p.required && !p.set && !p.value)
    .map(([key]) => key);
}

function renderParamsState(d) {
  const missing = paramsMissing(d);
  setText($("#params-state"), missing.length
    ? missing.length + " required " + (missing.length === 1 ? "value" : "values") + " missing"
    : "all required values set");
  $("#params-state").className = missing.length ? "bad" : "ok";
}

// What another admin, the CLI or the API changed reaches the form in place at each refresh,
// except in a field this page's admin is in or has typed into (data-edited, cleared by a save):
// so a save sends only what was typed here and never writes back a value read before the change.
function updateParams(d) {
  renderParamsState(d);
  renderDerived(d);
  for (const input of document.querySelectorAll("#params input[data-key]")) {
    const p = d.params[input.dataset.key];
    if (!p || input.dataset.edited || input === document.activeElement) continue;
    if (p.secret) {
      const hint = p.set ? "(set; type to change)" : "(not set)";
      if (input.placeholder !== hint) input.placeholder = hint;
    } else if (input.value !== (p.value || "")) {
      input.value = p.value || "";
    }
  }
}

function renderParams(d) {
  renderParamsState(d);
  const box = $("#params");
  box.replaceChildren();
  for (const [group, title, types] of GROUPS) {
    const entries = Object.entries(d.params).filter(([, p]) => types.includes(p.type));
    if (!entries.length) continue;
    const fs = el("fieldset", null, "params-group");
    fs.id = "params-" + group;
    fs.append(el("legend", title));
    for (const [key, p] of entries) fs.append(paramRow(key, p));
    box.append(fs);
  }
  renderDerived(d);
}

function renderDerived(d) {
  // A value the service fills in when the field is left empty (a value typed there wins), under
  // its field; kept up to date with the page (the network node reports its address later).
  for (const [key, p] of Object.entries(d.params)) {
    const row = document.querySelector("#params .param[data-key='" + key + "']");
    if (!row) continue;
    let der = row.querySelector(".derived");
    const shown = p.derived && !p.set;
    if (!p.secret) {
      const input = row.querySelector("input");
      const hint = shown && p.derived.value ? "derived " + p.derived.value
        : p.default ? "default " + p.default : "";
      if (input.placeholder !== hint) input.placeholder = hint;
    }
    if (!shown) { if (der) der.remove(); continue; }
    if (!der) {
      der = el("div", null, "derived");
      der.id = "param-derived-" + key;
      row.querySelector(".param-input").after(der);
    }
    setText(der, derivedText(p.derived));
  }
}

function paramRow(key, p) {
  const row = el("div", null, "param");
  row.dataset.key = key;
  const id = "param-" + key;
  const label = el("label", p.prompt);
  label.htmlFor = id;
  if (p.required) {
    const mark = el("span", " *", "req");
    mark.title = "required";
    label.append(mark);
  }
  const input = el("input");
  input.name = id;
  input.id = id;
  input.dataset.key = key;
  for (const type of ["input", "change"]) {
    input.addEventListener(type, () => { input.dataset.edited = "1"; });
  }
  if (p.required) input.setAttribute("aria-required", "true");
  if (p.secret) {
    input.type = "password";
    input.autocomplete = "new-password";
    input.placeholder = p.set ? "(set; type to change)" : "(not set)";
  } else {
    input.value = p.value || "";
    input.placeholder = p.default ? "default " + p.default : "";
  }
  const help = el("div", p.description || "", "help");
  help.id = id + "-help";
  const err = el("div", null, "field-error");
  err.id = "param-err-" + key;
  err.hidden = true;
  input.setAttribute("aria-describedby", help.id + " " + err.id);
  const line = el("div", null, "param-input");
  line.append(input);
  if (p.min_length) {
    // The API's rule (role.yaml min:), shown beside the field before anything is refused.
    const min = el("span", "at least " + p.min_length + " characters", "minlen");
    min.id = id + "-min";
    line.append(min);
    input.setAttribute("aria-describedby", min.id + " " + help.id + " " + err.id);
  }
  if (p.secret && key !== "admin_password") {
    // A service password no person types: generate one (shown, so it can be kept if wanted).
    const gen = el("button", "Generate", "generate");
    gen.type = "button";
    gen.setAttribute("aria-label", "Generate " + p.prompt);
    gen.addEventListener("click", () => {
      input.type = "text";
      input.value = generatePassword(Math.max(MIN_GENERATED, p.min_length || 0));
      input.dispatchEvent(new Event("input"));
    });
    line.append(gen);
  }
  line.append(el("code", key, "key"));
  row.append(label, line, help, err);
  return row;
}

function showFieldErrors(fields) {
  let first = null;
  for (const err of document.querySelectorAll("#params .field-error")) {
    const key = err.id.slice("param-err-".length);
    const why = fields ? fields[key] : null;
    err.textContent = why || "";
    err.hidden = !why;
    const input = document.getElementById("param-" + key);
    if (why) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    else input.removeAttribute("aria-invalid");
  }
  return first;
}

function roleChoices() {
  const arch = architectures.find((a) => a.name === current.architecture);
  return arch ? arch.shapes.map((s) => s.roles.join(",")) : [];
}

// States in which the service refuses a role change (store.py set_roles): the controls are
// disabled then, so the admin is not offered what would be refused.
const LOCKED_STATES = ["configuring", "done"];

// A node's way through both phases, as a share of the whole: the network install (discovered ->
// booting -> installing -> installed) is the first 40 %, the first-boot steps the other 60 %.
// A node installed from the disc registers at the start of its first boot.
const INSTALL_SHARE = 40;
const PHASES = {
  discovered: [0, "discovered: waiting for its roles"],
  registered: [0, "registered: waiting for its roles"],
  assigned: [5, "assigned: waiting for its next boot or first boot"],
  booting: [10, "booting the installer over the network"],
  installing: [25, "installing the system (preseed fetched)"],
  installed: [INSTALL_SHARE, "installed: first boot next"],
  reinstall: [5, "reinstall: installs again on its next network boot"],
};
// States in which the node should report now and then; silent longer than this, it is flagged.
const BUSY_STATES = ["booting", "installing", "installed", "configuring"];
const SILENT_AFTER_S = 15 * 60;
const STEP_RE = /^(\d+)\/(\d+) (\S+) (\S+) (ok|failed)$/;

function progressOf(n, previous) {
  if (n.state in PHASES) return { pct: PHASES[n.state][0], text: PHASES[n.state][1] };
  if (n.state === "done") return { pct: 100, text: "done: all first-boot steps ran" };
  const m = STEP_RE.exec(n.step || "");
  if (n.state === "failed") {
    // Where it failed (the service keeps the failed step: "2/4 compute libvirt failed"): the
    // steps before it are done. Failed before any step: installed, nothing more.
    const f = STEP_RE.exec(n.failed_step || "");
    const pct = f ? Math.round(INSTALL_SHARE + ((100 - INSTALL_SHARE) * (Number(f[1]) - 1)) /
      Number(f[2])) : INSTALL_SHARE;
    return { pct, text: n.step || "failed" };
  }
  const retrying = STEP_RE.exec(n.failed_step || "");
  if (!m && retrying) {  // retried (the service keeps the failed step until a step reports)
    const pct = Math.round(INSTALL_SHARE + ((100 - INSTALL_SHARE) * (Number(retrying[1]) - 1)) /
      Number(retrying[2]));
    return { pct, text: "first boot: retrying step " + retrying[1] + "/" + retrying[2] + " (" +
      retrying[3] + " " + retrying[4] + ")" };
  }
  if (!m) return { pct: INSTALL_SHARE, text: "first boot: answers fetched, step 1 starting" };
  const i = Number(m[1]), total = Number(m[2]);
  const pct = Math.round(INSTALL_SHARE + ((100 - INSTALL_SHARE) * i) / total);
  const next = i < total ? "step " + (i + 1) + "/" + total + " running" : "finishing";
  return { pct, text: "first boot: " + next + " (last: " + m[3] + " " + m[4] + " " + m[5] + ")" };
}

function duration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function gb(mb) {
  return (mb * 1048576 / 1e9).toFixed(1) + " GB";  // decimal GB, as disks are sold
}

function hardware(inv) {
  // A network-booted machine is known by its MAC and SMBIOS strings until its first boot reports.
  if (inv.reported === false) return "not reported yet (network boot)";
  return inv.cpus + " CPU, " + (inv.virt === "none" ? "no vmx/svm" : inv.virt) + ", " +
    (inv.mem_mb / 1024).toFixed(1) + " GiB RAM";
}

function nicLines(inv) {
  return inv.nics.map((c) => c.name + " " + c.mac + " " + c.state + (c.ipv4 ? " " + c.ipv4 : ""))
    .join("\n");
}

function derivedText(d) {
  // A value the service derived (the network node's address for the controller's route).
  if (d.value === null) return "derived: none yet (" + d.reason + ")";
  return "derived: " + d.value + " (node " + d.node + " " + d.hostname + "'s address on " +
    d.interface + ")";
}

function derivedLines(n) {
  return Object.entries(n.derived || {}).map(([k, d]) => k + " " + derivedText(d)).join("\n");
}

function diskLines(inv) {
  return inv.disks.map((k) => k.name + " " + gb(k.size_mb) + " " + (k.free ? "free" : "in use"))
    .join("\n");
}

function pad(x) { return String(x).padStart(2, "0"); }

function stamp(seconds) {
  // The browser's local time, to the second; the <time> element carries the exact UTC instant.
  const t = new Date(seconds * 1000);
  return t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate()) + " " +
    pad(t.getHours()) + ":" + pad(t.getMinutes()) + ":" + pad(t.getSeconds());
}

// --- node detail: inventory and timeline, refreshed with the page while open ---------------
let openNodeId = null;

async function openNode(id) {
  openNodeId = id;
  $("#node-detail").hidden = false;
  await refreshNode();
  $("#node-detail").scrollIntoView({ block: "nearest" });
}

function closeNode() {
  openNodeId = null;
  $("#node-detail").hidden = true;
}

const EVENT_STEP_RE = /^STACKOPS step=(\d+\/\d+) role=(\S+) name=(\S+) status=(\S+) t=([0-9.]+)s$/;
const EVENT_FAILED_RE = /^STACKOPS-FIRSTBOOT failed step=(\S+) log=(\S+)$/;

function describeEvent(e) {
  const m = EVENT_STEP_RE.exec(e.line);
  if (m) return "step " + m[1] + " " + m[2] + " " + m[3] + " " + m[4] + " (took " + m[5] + " s)";
  const f = EVENT_FAILED_RE.exec(e.line);
  if (f) return "first boot failed at " + f[1] + " (its log on the node: " + f[2] + ")";
  if (/^STACKOPS-FIRSTBOOT done/.test(e.line)) return "first boot done";
  return e.line;
}

async function refreshNode() {
  if (openNodeId === null || !current) return;
  let n;
  try {
    n = await api("GET", "/api/deployments/" + current.name + "/nodes/" + openNodeId);
  } catch (e) { showError(e.message); return; }
  setText($("#node-detail-title"), "Node " + n.id + " (" + n.hostname + "): " + n.state);
  const inv = n.inventory;
  const facts = [];
  const pxe = inv.pxe || {};
  if (pxe.vendor || pxe.product || pxe.serial) {
    facts.push(["Machine (SMBIOS)", [pxe.vendor, pxe.product].filter(Boolean).join(" ") +
      (pxe.serial ? "\nserial " + pxe.serial : "")]);
  }
  facts.push(["Processors", hardware(inv)]);
  facts.push(["NICs", nicLines(inv) || "none reported"]);
  facts.push(["Disks", diskLines(inv) || "none reported (yet)"]);
  if (Object.keys(n.derived || {}).length) facts.push(["Derived answers", derivedLines(n)]);
  facts.push(["MAC (boot)", n.mac]);
  facts.push(["Registered", stamp(n.registered_at)]);
  facts.push(["Last heard", stamp(n.last_seen)]);
  const dl = $("#node-inventory");
  const key = JSON.stringify(facts);
  if (dl.dataset.key !== key) {
    dl.dataset.key = key;
    dl.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  }
  const ol = $("#node-timeline");
  const ekey = n.events.length + ":" + (n.events.length ? n.events[n.events.length - 1].at : "");
  if (ol.dataset.key !== ekey) {
    ol.dataset.key = ekey;
    ol.replaceChildren(...n.events.map((e) => {
      const li = el("li", null, "event " + e.kind);
      const t = el("time", stamp(e.at));
      t.dateTime = new Date(e.at * 1000).toISOString();
      li.append(t, " ", el("span", e.kind, "kind"), " ", el("span", describeEvent(e), "line"));
      return li;
    }));
  }
  const failure = $("#node-failure");
  failure.hidden = n.state !== "failed";
  setText(failure, n.state === "failed" ? n.step : "");
  actionsNode(n);  // actions.js: retry, reinstall, the log tail
}

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
  const details = el("button", String(n.id), "details");
  details.type = "button";
  details.addEventListener("click", () => openNode(n.id));
  tr.querySelector("td.id").append(details);
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
  const prog = el("td", null, "progress");
  const bar = el("progress", null, "node-progress");
  bar.max = 100;
  bar.value = 0;
  prog.append(bar, el("span", null, "pct"), el("div", null, "step"), el("div", null, "elapsed"),
    el("div", null, "silent"));
  tr.append(td, el("td", null, "state"), prog);
  tbody.append(tr);
  return tr;
}

function renderExtra(box, n) {
  // Rebuilt only when what it shows changed (it holds the Approve/Reject buttons).
  const key = JSON.stringify([n.pending ? n.pending.inventory.hostname : null, n.notes, n.missing,
    n.derived]);
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
  for (const [k, d] of Object.entries(n.derived || {})) {
    box.append(el("div", k + " " + derivedText(d), d.value === null ? "note" : "derived"));
  }
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
  const pcts = [];
  const counts = {};
  for (const n of d.nodes) {
    seen.add(String(n.id));
    const tr = nodeRow(n);
    const cell = (cls) => tr.querySelector("td." + cls);
    const inv = n.inventory;
    setText(cell("host"), n.hostname);
    setText(cell("hw"), hardware(inv));
    setText(cell("nics"), nicLines(inv));
    setText(cell("disks"), diskLines(inv));
    const sel = tr.querySelector("select.roles");
    const btn = tr.querySelector("button.assign");
    const roles = n.roles.join(",");
    sel.dataset.server = roles;
    const label = "node " + n.id + " (" + n.hostname + ")";
    tr.querySelector("button.details").setAttribute("aria-label", "Details of " + label);
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
    const bar = tr.querySelector("progress.node-progress");
    const p = progressOf(n, bar.value);
    if (bar.value !== p.pct) bar.value = p.pct;
    bar.setAttribute("aria-label", "Progress of " + label);
    setText(tr.querySelector(".pct"), p.pct + " %");
    setText(tr.querySelector("div.step"), p.text);
    const end = n.state === "done" || n.state === "failed" ? n.last_seen : d.now;
    setText(tr.querySelector("div.elapsed"), "elapsed " + duration(end - n.registered_at));
    const quiet = d.now - n.last_seen;
    const silent = BUSY_STATES.includes(n.state) && quiet > SILENT_AFTER_S;
    tr.classList.toggle("silent", silent);
    setText(tr.querySelector("div.silent"), silent ? "silent for " + duration(quiet) +
      ": check its console" : "");
    pcts.push(p.pct);
    const group = n.state in PHASES && PHASES[n.state][0] > 0 &&
      !["assigned", "reinstall"].includes(n.state) ? "installing" : n.state;
    counts[group] = (counts[group] || 0) + 1;
    if (silent) counts.silent = (counts.silent || 0) + 1;
  }
  renderTotals(pcts, counts);
  renderTopology(d);  // topology.js
  arrangeNodes(d);  // nodes.js: selection and sort order
  applyFilter();
  for (const tr of [...$("#nodes tbody").children]) {
    if (!seen.has(tr.dataset.node)) tr.remove();
  }
}

// The filter hides the rows whose text (host, MACs, roles, state, progress) or chosen roles do
// not contain what the admin typed; it runs again after every refresh.
function applyFilter() {
  const q = $("#node-filter").value.trim().toLowerCase();
  const rows = [...$("#nodes tbody").children];
  let shown = 0;
  for (const tr of rows) {
    const roles = tr.querySelector("select.roles").value;
    const hit = !q || (tr.textContent + " " + roles).toLowerCase().includes(q);
    if (tr.hidden === hit) tr.hidden = !hit;
    if (hit) shown += 1;
  }
  setText($("#node-count"), q ? "showing " + shown + " of " + rows.length : "");
}

// The deployment's bar (the mean of its nodes') and "2 done · 1 failed · 1 configuring", in an
// aria-live region so a screen reader hears it change.
const SUMMARY_ORDER = ["done", "failed", "configuring", "installing", "assigned", "reinstall",
  "registered", "discovered", "silent"];

function renderTotals(pcts, counts) {
  const pct = pcts.length ? Math.round(pcts.reduce((a, b) => a + b, 0) / pcts.length) : 0;
  const bar = $("#dep-progress");
  if (bar.value !== pct) bar.value = pct;
  setText($("#dep-percent"), pcts.length ? pct + " %" : "");
  const parts = SUMMARY_ORDER.filter((k) => counts[k]).map((k) => counts[k] + " " + k);
  setText($("#dep-summary"), pcts.length ? parts.join(" · ") : "no nodes yet");
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

function copyText(text) {
  // The clipboard API needs a secure context (https or localhost); else the old way, through a
  // selected off-screen textarea.
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).catch(() => {});
    return;
  }
  const ta = el("textarea", text);
  ta.setAttribute("aria-hidden", "true");
  ta.style.position = "fixed";
  ta.style.left = "-9999px";
  document.body.append(ta);
  ta.select();
  try { document.execCommand("copy"); } finally { ta.remove(); }
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
      shownToken = { dep: r.deployment.name, token: r.enrolment_token };
      $("#token-box").hidden = false;
      $("#new-name").value = "";
      await listDeployments();
    } catch (e) { showError(e.message); }
  });
  $("#params-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const values = {};
    for (const input of document.querySelectorAll("#params input[data-key]")) {
      const p = current.params[input.dataset.key];
      if (!input.dataset.edited) continue;  // untouched here: its value is the service's
      if (p.secret) { if (input.value) values[input.dataset.key] = input.value; }
      else if ((p.value || "") !== input.value) values[input.dataset.key] = input.value || null;
    }
    showFieldErrors(null);
    if (!Object.keys(values).length) { $("#params-msg").textContent = "nothing changed"; return; }
    try {
      const d = await api("PUT", "/api/deployments/" + current.name + "/params", values);
      renderParams(d);
      renderDeployment(d);
      $("#params-msg").textContent = "saved";
      $("#params-msg").className = "ok";
    } catch (e) {
      const first = showFieldErrors(e.fields);
      if (first) {
        const n = Object.keys(e.fields).length;
        $("#params-msg").textContent = n + (n === 1 ? " value" : " values") +
          " refused: see the field" + (n === 1 ? "" : "s") + " marked";
        $("#params-msg").className = "bad";
        first.focus();
      } else {
        $("#params-msg").textContent = "";
        showError(e.message);
      }
    }
  });
  $("#node-detail-close").addEventListener("click", closeNode);
  $("#node-filter").addEventListener("input", applyFilter);
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", () => copyText($("#" + b.dataset.copy).textContent));
  }
  $("#netboot-unknown").addEventListener("change", async () => {
    const sel = $("#netboot-unknown");
    showError("");
    try {
      const nb = await api("PUT", "/api/deployments/" + current.name + "/netboot",
        { unknown: sel.value });
      setText($("#netboot-msg"), "saved: " + nb.unknown);
    } catch (e) { showError(e.message); }
  });
  $("#node-forget").addEventListener("click", async () => {
    const n = current.nodes.find((x) => x.id === openNodeId);
    const label = "node " + openNodeId + (n ? " (" + n.hostname + ")" : "");
    if (!confirm("Forget " + label + "? Its record, token and events go; the machine " +
      "registers as a new node if it boots again.")) return;
    showError("");
    try {
      await api("POST", "/api/deployments/" + current.name + "/nodes/" + openNodeId + "/forget");
      $("#assign-msg").textContent = label + ": forgotten";
      closeNode();
      await refresh();
    } catch (e) { showError(e.message); }
  });
  $("#delete-deployment").addEventListener("click", async () => {
    const name = current.name;
    const typed = prompt("Delete deployment " + name + " with its " + current.nodes.length +
      " node(s)? Type its name to confirm.");
    if (typed === null) return;
    showError("");
    try {
      await api("POST", "/api/deployments/" + name + "/delete", { confirm: typed });
      current = null;
      location.hash = "#";
      await listDeployments();
    } catch (e) { showError(e.message); }
  });
  $("#rotate-token").addEventListener("click", async () => {
    if (!confirm("Make a new enrolment token for " + current.name + "? Discs built with the " +
      "old one can no longer register nodes.")) return;
    showError("");
    try {
      const r = await api("POST", "/api/deployments/" + current.name + "/token");
      $("#rotated-token").textContent = r.enrolment_token;
      $("#rotated-box").hidden = false;
      shownToken = { dep: current.name, token: r.enrolment_token };
      renderBuild(current.name);
    } catch (e) { showError(e.message); }
  });
  $("#copy-rotated").addEventListener("click", () => copyText($("#rotated-token").textContent));
  window.addEventListener("hashchange", route);
  route();
});
