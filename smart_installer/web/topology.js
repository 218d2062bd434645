// The deployment's topology, drawn from its data as SVG: the architecture's nodes with their
// roles, the public, floating and flat networks, which NIC of which node is on which, and the
// controller's address. Readable without colour: every network has its own line pattern and its
// name written on it, every link the NIC's name, every node its roles in words; the whole picture
// is also told in text (<title>, <desc>) for a screen reader. Redrawn only when what it shows
// changed; it holds no control, so a redraw takes no focus from anything.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const TOPO = {
  boxW: 160, boxH: 80, gap: 24, left: 20, publicY: 30, floatingY: 70, boxY: 118,
  flatY: 236, height: 262, maxPerShape: 6,
};
// Networks: their pattern (dash array) and how the legend and the links name them.
const NETS = {
  public: { dash: "", width: 3, name: "public network" },
  floating: { dash: "10 5", width: 2, name: "floating addresses" },
  flat: { dash: "2 4", width: 3, name: "flat network" },
};

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function paramValue(d, key) {
  const p = d.params[key];
  if (!p) return null;
  return p.value || p.default || null;
}

// What the picture shows, as plain data (also the key that says whether to redraw).
function topologyModel(d, archs) {
  const arch = archs.find((a) => a.name === d.architecture);
  const shapes = arch ? arch.shapes : [];
  const assigned = d.nodes.filter((n) => n.roles.length);
  const boxes = [];
  for (const shape of shapes) {
    const key = shape.roles.join(",");
    const mine = assigned.filter((n) => n.roles.join(",") === key);
    for (const n of mine.slice(0, TOPO.maxPerShape)) {
      const a = n.answers || {};
      const roles = n.roles;
      boxes.push({
        id: n.id, host: n.hostname, roles, state: n.state,
        pub: a.public_interface || "eth0",
        // A node is on the flat network when one of its roles asks flat_interface (the
        // service keeps the answer, automatic or the admin's); the floating addresses are
        // nova-network's, so on the network role's public NIC.
        flat: a.flat_interface || null,
        floating: roles.includes("network"),
        controller: roles.includes("controller"),
      });
    }
    if (mine.length > TOPO.maxPerShape) {
      boxes.push({ more: mine.length - TOPO.maxPerShape, roles: shape.roles });
    }
    if (mine.length < shape.min) {
      boxes.push({ missing: shape.min - mine.length, roles: shape.roles });
    }
  }
  return {
    arch: d.architecture,
    controller: paramValue(d, "controller_address"),
    floating: paramValue(d, "floating_range"),
    fixed: paramValue(d, "fixed_range"),
    unassigned: d.nodes.length - assigned.length,
    boxes,
  };
}

function topologyText(m) {
  // The same picture in words (the SVG's <desc>, and what a test can read).
  const parts = [m.arch + " deployment."];
  parts.push("Public network" + (m.controller ? ", controller address " + m.controller : "") +
    ". Floating addresses " + (m.floating || "not set") + ". Flat network " +
    (m.fixed || "not set") + ".");
  for (const b of m.boxes) {
    if (b.missing) {
      parts.push("No node yet for " + b.roles.join(", ") + ".");
    } else if (b.more) {
      parts.push(b.more + " more " + b.roles.join(", ") + " nodes, not drawn.");
    } else {
      let s = "Node " + b.id + " " + b.host + " (" + b.roles.join(", ") + ", " + b.state +
        "): " + b.pub + " on the public network";
      if (b.floating) s += " with the floating addresses";
      if (b.flat) s += ", " + b.flat + " on the flat network";
      if (b.controller && m.controller) s += "; controller address " + m.controller;
      parts.push(s + ".");
    }
  }
  if (m.unassigned) parts.push(m.unassigned + " node(s) without roles, not drawn.");
  return parts.join(" ");
}

function drawBus(svg, net, y, width, label, below) {
  const style = NETS[net];
  const line = svgEl("line", {
    x1: TOPO.left, y1: y, x2: width - TOPO.left, y2: y, class: "net " + net,
    "stroke-width": style.width,
  });
  if (style.dash) line.setAttribute("stroke-dasharray", style.dash);
  const at = below ? y + 17 : y - 7;
  svg.append(line, svgEl("text", { x: TOPO.left, y: at, class: "net-label " + net }, label));
}

// A link from a bus (at busY) to a box's edge (at boxEdge), the NIC's name beside it near the
// box; a dot marks where it joins its bus, so a link that only crosses another bus is not on it.
function drawLink(svg, net, x, busY, boxEdge, nic) {
  const style = NETS[net];
  const line = svgEl("line", {
    x1: x, y1: busY, x2: x, y2: boxEdge, class: "link " + net, "stroke-width": 2,
  });
  if (style.dash) line.setAttribute("stroke-dasharray", style.dash);
  const labelY = boxEdge < busY ? boxEdge + 14 : boxEdge - 5;
  svg.append(line, svgEl("circle", { cx: x, cy: busY, r: 4, class: "joint " + net }),
    svgEl("text", { x: x + 5, y: labelY, class: "nic" }, nic));
}

function drawBox(svg, b, x, address) {
  const y = TOPO.boxY;
  const g = svgEl("g", { class: "node" + (b.missing ? " missing" : b.more ? " more" : "") });
  const rect = svgEl("rect", { x, y, width: TOPO.boxW, height: TOPO.boxH, rx: 4 });
  if (b.missing || b.more) rect.setAttribute("stroke-dasharray", "6 4");
  g.append(rect);
  const lines = [];
  if (b.missing) {
    lines.push(["no node yet", "title"], [b.roles.join(", "), "roles"]);
  } else if (b.more) {
    lines.push(["+ " + b.more + " more", "title"], [b.roles.join(", "), "roles"]);
  } else {
    lines.push(["#" + b.id + " " + b.host, "title"], [b.roles.join(", "), "roles"]);
    lines.push([b.state, "state"]);
    if (b.controller && address) lines.push(["address " + address, "address"]);
  }
  lines.forEach(([text, cls], i) => {
    const t = svgEl("text", { x: x + 8, y: y + 18 + i * 17, class: cls }, text);
    if (text.length > 24) t.setAttribute("textLength", TOPO.boxW - 16);
    g.append(t);
  });
  if (b.id !== undefined) g.setAttribute("data-node", b.id);
  svg.append(g);
}

function drawTopology(svg, m) {
  const n = Math.max(m.boxes.length, 1);
  const width = Math.max(640, TOPO.left * 2 + n * (TOPO.boxW + TOPO.gap));
  svg.setAttribute("viewBox", "0 0 " + width + " " + TOPO.height);
  svg.setAttribute("width", width);  // drawn at its size; CSS narrows it on a small screen
  svg.setAttribute("height", TOPO.height);
  // The <title> and <desc> stay the same elements (aria-labelledby points at them); only
  // their text changes. The drawing under them is made again.
  const title = svg.querySelector("#topology-title") || svgEl("title", { id: "topology-title" });
  const desc = svg.querySelector("#topology-desc") || svgEl("desc", { id: "topology-desc" });
  setText(title, "Topology of " + m.arch + (m.controller ? ", controller " + m.controller : ""));
  setText(desc, topologyText(m));
  svg.replaceChildren(title, desc);
  drawBus(svg, "public", TOPO.publicY, width, "public network" +
    (m.controller ? " (controller " + m.controller + ")" : "") + " \u2014 solid line");
  drawBus(svg, "floating", TOPO.floatingY, width, "floating addresses " +
    (m.floating || "(not set)") + " \u2014 dashed line");
  drawBus(svg, "flat", TOPO.flatY, width, "flat network " + (m.fixed || "(not set)") +
    " \u2014 dotted line", true);
  m.boxes.forEach((b, i) => {
    const x = TOPO.left + i * (TOPO.boxW + TOPO.gap);
    if (b.pub) {
      drawLink(svg, "public", x + 30, TOPO.publicY, TOPO.boxY, b.pub);
      if (b.floating) {
        drawLink(svg, "floating", x + 100, TOPO.floatingY, TOPO.boxY, b.pub);
      }
      if (b.flat) {
        const shared = b.flat === b.pub ? " (shared)" : "";
        drawLink(svg, "flat", x + 30, TOPO.flatY, TOPO.boxY + TOPO.boxH, b.flat + shared);
      }
    }
    drawBox(svg, b, x, m.controller);
  });
}

// Called by app.js after each refresh of the deployment.
function renderTopology(d) {
  const svg = document.getElementById("topology-svg");
  if (!svg) return;
  const m = topologyModel(d, architectures);
  const key = JSON.stringify(m);
  if (svg.dataset.key === key) return;
  svg.dataset.key = key;
  drawTopology(svg, m);
  const note = document.getElementById("topology-note");
  if (note) {
    note.textContent = m.unassigned
      ? m.unassigned + " node(s) without roles are not drawn: give them roles below."
      : "";
  }
}
