// Many nodes (30 and more): sortable columns (aria-sort on the header), a checkbox per row, and
// one role choice given to every selected node at once (asking first when it takes roles away).
// Rows are never rebuilt: the sort moves the other rows around a row holding the focus, so a
// select or checkbox being used keeps its focus, and a checkbox keeps its tick through refreshes.
"use strict";

let sortBy = null;  // {key, dir: 1 | -1} once the admin sorts
const STATE_ORDER = ["discovered", "registered", "assigned", "booting", "installing",
  "installed", "configuring", "failed", "done"];

const SORT_KEYS = {
  id: (tr) => Number(tr.dataset.node),
  host: (tr) => cellText(tr, "td.host").toLowerCase(),
  roles: (tr) => (tr.querySelector("select.roles") || {}).value || "\uffff",
  state: (tr) => {
    const i = STATE_ORDER.indexOf(cellText(tr, "td.state"));
    return i < 0 ? STATE_ORDER.length : i;
  },
  progress: (tr) => Number((tr.querySelector("progress.node-progress") || {}).value || 0),
};

function cellText(tr, sel) {
  const c = tr.querySelector(sel);
  return c ? c.textContent : "";
}

function pickBox(tr) {
  let td = tr.querySelector("td.pick");
  if (td) return td.firstChild;
  td = document.createElement("td");
  td.className = "pick";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "pick";
  box.addEventListener("change", updateSelection);
  td.append(box);
  tr.prepend(td);
  return box;
}

function selectedRows() {
  return [...document.querySelectorAll("#nodes tbody tr")].filter(
    (tr) => !tr.hidden && tr.querySelector("input.pick:checked"),
  );
}

function updateSelection() {
  const rows = [...document.querySelectorAll("#nodes tbody tr")].filter((tr) => !tr.hidden);
  const picked = rows.filter((tr) => tr.querySelector("input.pick:checked")).length;
  const all = document.getElementById("pick-all");
  all.checked = rows.length > 0 && picked === rows.length;
  all.indeterminate = picked > 0 && picked < rows.length;
  const count = document.getElementById("bulk-count");
  const text = picked ? picked + " selected" : "none selected";
  if (count.textContent !== text) count.textContent = text;
  document.getElementById("bulk-assign").disabled = picked === 0;
}

// Called by app.js after each refresh: every row has its checkbox (named after its node), the
// bulk role choices exist, and the rows stand in the chosen order.
function arrangeNodes(d) {
  for (const tr of document.querySelectorAll("#nodes tbody tr")) {
    const box = pickBox(tr);
    const n = d.nodes.find((x) => String(x.id) === tr.dataset.node);
    const label = "Select node " + tr.dataset.node + (n ? " (" + n.hostname + ")" : "");
    if (box.getAttribute("aria-label") !== label) box.setAttribute("aria-label", label);
  }
  const bulk = document.getElementById("bulk-roles");
  const choices = roleChoices();
  const want = JSON.stringify(choices);
  if (bulk.dataset.key !== want) {
    bulk.dataset.key = want;
    bulk.replaceChildren(new Option("(none: unassign)", ""),
      ...choices.map((c) => new Option(c, c)));
    if (choices.length) bulk.value = choices[choices.length - 1];
  }
  sortRows();
  updateSelection();
}

function sortRows() {
  if (!sortBy) return;
  const tbody = document.querySelector("#nodes tbody");
  const rows = [...tbody.children];
  const keyOf = SORT_KEYS[sortBy.key];
  const want = rows
    .map((tr) => [keyOf(tr), Number(tr.dataset.node), tr])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]) * sortBy.dir)
    .map((x) => x[2]);
  if (want.every((tr, i) => tr === rows[i])) return;
  // The row holding the focus stays where it is; the others are put before and after it (a
  // moved element loses its focus).
  const active = document.activeElement;
  const pivot = rows.find((tr) => tr.contains(active)) || null;
  if (!pivot) {
    for (const tr of want) tbody.append(tr);
    return;
  }
  const at = want.indexOf(pivot);
  for (const tr of want.slice(0, at)) tbody.insertBefore(tr, pivot);
  for (const tr of want.slice(at + 1)) tbody.append(tr);
}

function setSort(key) {
  sortBy = sortBy && sortBy.key === key ? { key, dir: -sortBy.dir } : { key, dir: 1 };
  for (const th of document.querySelectorAll("#nodes thead th[data-sort]")) {
    const on = th.dataset.sort === key;
    th.setAttribute("aria-sort", on ? (sortBy.dir > 0 ? "ascending" : "descending") : "none");
  }
  sortRows();
}

async function bulkAssign() {
  const rows = selectedRows();
  const roles = document.getElementById("bulk-roles").value;
  const msg = document.getElementById("bulk-msg");
  if (!rows.length) return;
  const byId = new Map(current.nodes.map((n) => [String(n.id), n]));
  const nodes = rows.map((tr) => byId.get(tr.dataset.node)).filter(Boolean);
  const losing = nodes.filter((n) => n.roles.length && n.roles.join(",") !== roles);
  if (losing.length && !roles) {
    const names = losing.slice(0, 5).map((n) => n.id + " (" + n.hostname + ")").join(", ");
    if (!confirm("Unassign " + losing.length + " node(s): " + names +
      (losing.length > 5 ? ", ..." : "") + "? They lose their roles.")) {
      msg.textContent = "nothing changed";
      return;
    }
  }
  showError("");
  const done = [], refused = [];
  for (const [i, n] of nodes.entries()) {
    msg.textContent = "assigning " + (i + 1) + " of " + nodes.length + "…";
    if (LOCKED_STATES.includes(n.state)) {
      refused.push("node " + n.id + ": " + n.state + ", its roles can no longer change");
      continue;
    }
    try {
      await api("PUT", "/api/deployments/" + current.name + "/nodes/" + n.id + "/roles",
        { roles: roles ? roles.split(",") : [] });
      done.push(n.id);
      const sel = document.querySelector("#nodes tr[data-node='" + n.id + "'] select.roles");
      if (sel) sel.dataset.edited = "";
    } catch (e) {
      refused.push("node " + n.id + ": " + e.message);
    }
  }
  msg.textContent = (roles || "no roles") + ": " + done.length + " of " + nodes.length +
    " assigned" + (refused.length ? "; refused: " + refused.join("; ") : "");
  for (const tr of rows) {
    const box = tr.querySelector("input.pick");
    if (box && done.includes(Number(tr.dataset.node))) box.checked = false;
  }
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const th of document.querySelectorAll("#nodes thead th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => setSort(th.dataset.sort));
  }
  document.getElementById("pick-all").addEventListener("change", (ev) => {
    for (const tr of document.querySelectorAll("#nodes tbody tr")) {
      if (!tr.hidden) pickBox(tr).checked = ev.target.checked;
    }
    updateSelection();
  });
  document.getElementById("bulk-assign").addEventListener("click", bulkAssign);
  document.getElementById("node-filter").addEventListener("input", updateSelection);
});
