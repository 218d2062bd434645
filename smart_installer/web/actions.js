// StackOps Smart Installer: what the admin does when a deployment goes wrong or goes well.
// Cloud ready (the endpoints, stackops-check's verdict, the nova.zip download), and on a node:
// retry the failed step, reinstall on the next network boot, the failing step's log tail.
// Loaded after app.js (its $, el, api, setText, current, openNodeId, refresh); app.js calls
// actionsDeployment(d) on each refresh and actionsNode(n) when the node detail is drawn.
"use strict";

// --- cloud ready ----------------------------------------------------------------------------

async function actionsDeployment(d) {
  let c = null;
  try { c = await api("GET", "/api/deployments/" + d.name + "/cloud"); } catch (e) { return; }
  if (!current || current.name !== d.name) return;  // another deployment opened meanwhile
  renderCloud(d.name, c);
}

function cloudTitle(c) {
  if (c.ready) return "Cloud ready";
  if (c.check.verdict === "failed") return "Cloud not ready: stackops-check failed";
  if (c.controller.state === "failed") return "Cloud not ready: the controller's first boot failed";
  return "Cloud not ready yet (controller " + c.controller.state + ")";
}

function renderCloud(name, c) {
  const box = $("#cloud");
  const key = JSON.stringify(c);
  if (box.dataset.key === key) return;  // redrawn only when something changed
  box.dataset.key = key;
  box.hidden = !c.controller;
  if (!c.controller) return;
  box.classList.toggle("ready", c.ready);
  box.classList.toggle("failed", c.check.verdict === "failed");
  setText($("#cloud-title"), cloudTitle(c));
  const facts = [
    ["EC2 API", c.endpoints.ec2 || "?"],
    ["S3 (nova-objectstore)", c.endpoints.s3 || "?"],
    ["Glance", c.endpoints.glance || "?"],
    ["Admin user", c.admin_user],
    ["Project", c.project],
  ];
  $("#cloud-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  const verdict = c.check.verdict === "none" ? "stackops-check has not run yet" :
    c.check.summary;  // "stackops-check: passed 4 checks" | "...: FAILED 1 of 4 checks: ec2"
  setText($("#cloud-verdict"), verdict);
  $("#cloud-checks").replaceChildren(...c.check.checks.map((k) =>
    el("li", (k.status === "ok" ? "\u2714 ok " : "\u2716 FAIL ") + k.name + ": " + k.detail,
      "check " + k.status)));
  const link = $("#cloud-download");
  link.hidden = !c.credentials;
  link.href = "/api/deployments/" + encodeURIComponent(name) + "/credentials";
  setText($("#cloud-no-credentials"), c.credentials ? "" :
    "nova.zip not uploaded yet: the controller's agent sends it after its admin step.");
  setText($("#cloud-credentials-note"), c.credentials ? "nova.zip (" + c.credentials.size +
    " bytes: novarc and the EC2 certificates) holds the admin's secret key; keep it 0600." : "");
}

// --- node actions ---------------------------------------------------------------------------

function actionsNode(n) {
  const failed = n.state === "failed";
  const retry = $("#node-retry");
  retry.hidden = !failed;
  retry.disabled = !!n.retry_requested;
  setText(retry, n.retry_requested ? "Retry requested (the agent's next poll)" :
    "Retry the failed step");
  retry.setAttribute("aria-label", "Retry the failed step of node " + n.id);
  const reinstall = $("#node-reinstall");
  reinstall.hidden = !n.roles.length;
  reinstall.disabled = n.state === "reinstall";
  reinstall.setAttribute("aria-label", "Reinstall node " + n.id + " on its next network boot");
  setText($("#node-state-note"), n.state === "reinstall" ?
    "Reinstall on its next network boot: power-cycle it with network boot (iPXE) first." : "");
  const tail = $("#node-log-tail");
  const show = failed && !!n.failure_log;
  $("#node-log-box").hidden = !show;
  setText(tail, show ? n.failure_log : "");
}

async function nodeAction(action) {
  const id = openNodeId;
  const n = (current.nodes || []).find((x) => x.id === id) || {};
  const label = "node " + id + (n.hostname ? " (" + n.hostname + ")" : "");
  if (action === "reinstall" && !confirm("Reinstall " + label + " on its next network boot? " +
    "Its disk is wiped and its roles (" + (n.roles || []).join(",") + ") installed again.")) {
    return;
  }
  showError("");
  try {
    const r = await api("POST", "/api/deployments/" + current.name + "/nodes/" + id + "/" +
      action, {});
    setText($("#node-action-msg"), action === "retry" ?
      label + ": retry requested; the agent runs again from step " +
      (r.failed_step || r.step).replace(/ failed$/, "") + " on its next poll" : label + ": " + r.state + " on its next network boot");
    await refresh();
  } catch (e) { showError(e.message); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#node-retry").addEventListener("click", () => nodeAction("retry"));
  $("#node-reinstall").addEventListener("click", () => nodeAction("reinstall"));
});
