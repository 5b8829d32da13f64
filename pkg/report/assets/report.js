// ext3replay report: draws the runs embedded in #data on canvases.
// Everything is drawn from column arrays (one per field), never one DOM node per
// I/O operation, so runs of 100,000 operations stay fast.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  // The same tables as pkg/report/report.go (opCodes, kindCodes).
  const OPS = ["read", "write", "create", "mkdir", "symlink", "mknod", "delete", "rmdir", "move", "link", "unlink", "truncate", "anomaly"];
  const KINDS = ["", "data", "dir", "indirect", "inode", "bitmap", "super", "gdt", "journal", "unowned",
    "extent", "partition-table", "swap", "partition", "unpartitioned"];
  const READ = 0, WRITE = 1, ANOMALY = 12;
  // Colour classes of the sector plot, seekwatcher-like.
  const KCLASS = { "": "data", data: "data", dir: "directory", indirect: "indirect", inode: "inode table", bitmap: "bitmaps",
    super: "super/gdt", gdt: "super/gdt", journal: "journal", unowned: "unowned", extent: "indirect",
    "partition-table": "partition table", swap: "swap", partition: "unowned", unpartitioned: "unowned" };
  const KCOL = { data: "#1f77b4", directory: "#2ca02c", indirect: "#17becf", "inode table": "#ff7f0e", bitmaps: "#9467bd",
    "super/gdt": "#8c564b", journal: "#d62728", unowned: "#7f7f7f", "partition table": "#bcbd22", swap: "#e7ba52" };
  const OPCOL = { create: "#2ca02c", mkdir: "#137313", symlink: "#6b8e23", mknod: "#556b2f", delete: "#d62728", rmdir: "#a31515",
    move: "#9467bd", link: "#17becf", unlink: "#e377c2", truncate: "#ff7f0e", anomaly: "#000000" };
  const IOCOL = { read: "#3b7dd8", write: "#e8743b" };
  // The sector plot has the timeline's left margin, so the two time axes line up.
  const LANE_H = 16, LABEL_W = 240, AXIS_H = 44, SECT_H = 340, SECT_L = LABEL_W;

  const collator = new Intl.Collator("en", { numeric: true }); // before prepare, which sorts with it
  const runs = D.runs.map(prepare);
  // One time domain and one sector domain for every run, so that two runs
  // side by side are on the same axes. Runs drawn against record numbers (a
  // log without time) share a domain of their own.
  const full = {};
  let maxSector = 1;
  for (const R of runs) {
    const d = full[R.axis] || (full[R.axis] = [Infinity, -Infinity]);
    for (const a of [R.x, R.flush, R.commit]) for (let i = 0; i < a.length; i++) { if (a[i] < d[0]) d[0] = a[i]; if (a[i] > d[1]) d[1] = a[i]; }
    maxSector = Math.max(maxSector, R.maxSector);
  }
  for (const k in full) {
    let d = full[k];
    if (!isFinite(d[0])) d = [0, 1];
    if (d[1] <= d[0]) d[1] = d[0] + 1;
    const pad = (d[1] - d[0]) * 0.01;
    full[k] = [d[0] - pad, d[1] + pad];
  }
  const view = {};
  const resetView = () => { for (const k in full) view[k] = full[k].slice(); };
  resetView();
  const axis0 = runs.length ? runs[0].axis : "t";
  let filter = "";
  // The address can carry the view of the first run's axis and the filter
  // (#view=4.2,4.7&filter=/var), so a zoomed view can be shared; zooming and
  // filtering update it.
  {
    const h = new URLSearchParams(location.hash.slice(1));
    const v = (h.get("view") || "").split(",").map(Number);
    if (v.length === 2 && isFinite(v[0]) && isFinite(v[1]) && v[1] > v[0]) view[axis0] = v;
    filter = h.get("filter") || "";
  }
  function saveHash() {
    const h = new URLSearchParams();
    const v = view[axis0], f = full[axis0];
    if (v && (v[0] !== f[0] || v[1] !== f[1])) h.set("view", v[0].toPrecision(8) + "," + v[1].toPrecision(8));
    if (filter) h.set("filter", filter);
    try { history.replaceState(null, "", "#" + h.toString()); } catch (e) { /* file:// in some browsers */ }
  }

  function prepare(R) {
    R.opName = R.op.map((c) => OPS[c]);
    // Lanes: every path of the run and its ancestor directories, plus one
    // lane per kind for I/O that has no path (journal, bitmaps, unowned).
    const laneOf = new Map();
    const lanes = [];
    function lane(key, path, pseudo) {
      let l = laneOf.get(key);
      if (l === undefined) {
        l = lanes.length;
        laneOf.set(key, l);
        lanes.push({ key, path, pseudo, parent: -1, depth: 0, kids: 0, dir: false });
      }
      return l;
    }
    function pathLane(p) {
      if (laneOf.has(p)) return laneOf.get(p);
      const l = lane(p, p, false);
      if (p !== "/") {
        const cut = p.lastIndexOf("/");
        const parent = cut <= 0 ? "/" : p.slice(0, cut);
        const pl = pathLane(parent);
        lanes[l].parent = pl;
        lanes[pl].kids++;
        lanes[pl].dir = true;
      }
      return l;
    }
    const opLane = new Int32Array(R.op.length);
    for (let i = 0; i < R.op.length; i++) {
      const p = R.paths[R.p[i]];
      if (R.to[i]) pathLane(R.paths[R.to[i]]);
      if (p) {
        opLane[i] = pathLane(p);
        const k = KINDS[R.k[i]];
        if (k === "dir" || R.opName[i] === "mkdir" || R.opName[i] === "rmdir") lanes[opLane[i]].dir = true;
      } else {
        const what = R.op[i] === ANOMALY ? "anomalies" : (KINDS[R.k[i]] || "no path");
        opLane[i] = lane("\u0000" + what, "(" + what + ", no path)", true);
      }
    }
    // Depth-first order, a directory right above what it holds, names compared
    // component by component with numbers as numbers (d2 before d10).
    for (const L of lanes) L.parts = L.pseudo ? null : L.path.split("/");
    const order = lanes.map((_, i) => i).sort((x, y) => cmpLane(lanes[x], lanes[y]));
    const rank = new Int32Array(lanes.length);
    order.forEach((l, r) => { rank[l] = r; });
    const sorted = order.map((l) => lanes[l]);
    for (const L of sorted) {
      if (L.parent >= 0) { L.parent = rank[L.parent]; }
    }
    for (let i = 0; i < opLane.length; i++) opLane[i] = rank[opLane[i]];
    for (const L of sorted) L.depth = L.parent >= 0 ? sorted[L.parent].depth + 1 : 0;
    R.lanes = sorted;
    R.opLane = opLane;
    // Start expanded unless that makes a very long list: then only the top two levels.
    R.collapsed = new Uint8Array(sorted.length);
    if (sorted.length > 400) sorted.forEach((L, i) => { if (L.dir && L.depth >= 2) R.collapsed[i] = 1; });
    R.opRow = new Int32Array(R.op.length);
    R.maxBytes = 1;
    for (let i = 0; i < R.op.length; i++) if (R.op[i] <= WRITE && R.b[i] > R.maxBytes) R.maxBytes = R.b[i];
    return R;
  }

  function cmpLane(A, B) {
    if (A.pseudo !== B.pseudo) return A.pseudo ? -1 : 1;
    if (A.pseudo) return A.key < B.key ? -1 : A.key > B.key ? 1 : 0;
    const a = A.parts, b = B.parts, n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) return collator.compare(a[i], b[i]) || (a[i] < b[i] ? -1 : 1);
    }
    return a.length - b.length;
  }

  // layout recomputes, for one run, which lanes are shown (collapsing and the
  // filter) and the row of every operation.
  function layout(R) {
    const n = R.lanes.length;
    const show = new Int32Array(n); // lane that stands for this one (itself, or a collapsed ancestor)
    for (let i = 0; i < n; i++) {
      const p = R.lanes[i].parent;
      show[i] = p >= 0 && (show[p] !== p || R.collapsed[p]) ? show[p] : i;
    }
    // Kept: lanes whose path matches, lanes of ops that match (a move into the
    // filtered directory is drawn on its source's lane), and their ancestors,
    // so a collapsed directory stays when anything below it matches.
    const keep = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const L = R.lanes[i];
      if (!filter || (!L.pseudo && L.path.includes(filter))) keep[i] = 1;
    }
    if (filter) for (let i = 0; i < R.opLane.length; i++) if (matches(R, i)) keep[R.opLane[i]] = 1;
    for (let i = n - 1; i >= 0; i--) if (keep[i] && R.lanes[i].parent >= 0) keep[R.lanes[i].parent] = 1;
    const rowOf = new Int32Array(n).fill(-1);
    const rows = [];
    for (let i = 0; i < n; i++) if (show[i] === i && keep[i]) { rowOf[i] = rows.length; rows.push(i); }
    for (let i = 0; i < R.opLane.length; i++) {
      const l = R.opLane[i];
      R.opRow[i] = matches(R, i) ? rowOf[show[l]] : -1;
    }
    R.rows = rows;
  }

  function matches(R, i) {
    if (!filter) return true;
    const p = R.paths[R.p[i]], t = R.paths[R.to[i]];
    return (p && p.includes(filter)) || (t && t.includes(filter));
  }

  // ---- axes ----
  function xOf(R, v, x0, w) { const d = view[R.axis]; return x0 + ((v - d[0]) / (d[1] - d[0])) * w; }
  function vOf(R, px, x0, w) { const d = view[R.axis]; return d[0] + ((px - x0) / w) * (d[1] - d[0]); }
  function ticks(a, b, n) {
    const span = b - a, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(a / step) * step; v <= b; v += step) out.push(v);
    return out;
  }
  function fmtX(R, v) {
    if (R.axis === "seq") return "#" + Math.round(v);
    const span = view[R.axis][1] - view[R.axis][0];
    return v.toFixed(span < 0.01 ? 5 : span < 1 ? 3 : span < 100 ? 2 : 0) + " s";
  }
  function human(n) {
    if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
    if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
    if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
    return n + " B";
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function sizeCanvas(c, w, h) {
    const r = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(w * r));
    c.height = Math.max(1, Math.round(h * r));
    c.style.width = w + "px";
    c.style.height = h + "px";
    const ctx = c.getContext("2d");
    ctx.setTransform(r, 0, 0, r, 0, 0);
    return ctx;
  }

  // ---- page skeleton ----
  const main = document.getElementById("runs");
  main.style.gridTemplateColumns = "repeat(" + runs.length + ", minmax(0, 1fr))";
  const tip = document.getElementById("tip");
  function showTip(ev, text) {
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - 320) + "px";
    tip.style.top = ev.clientY + 14 + "px";
  }
  function hideTip() { tip.hidden = true; }

  function opText(R, i) {
    const name = R.opName[i], p = R.paths[R.p[i]] || "-", to = R.paths[R.to[i]];
    let s = name + " " + p;
    if (to) s += " -> " + to;
    if (R.op[i] <= WRITE) s += "\n" + human(R.b[i]) + " at sector " + R.sec[i] + " (" + (KINDS[R.k[i]] || "data") + ")";
    if (name === "truncate") s += " size " + R.b[i];
    s += "\nrecord #" + R.seq[i] + (R.axis === "t" ? ", " + R.x[i].toFixed(6) + " s" : "");
    return s;
  }

  runs.forEach((R, ri) => {
    const el = document.createElement("section");
    el.className = "run";
    el.dataset.run = ri;
    const notes = [];
    if (!R.metadata)
      notes.push("Saved without <code>analyze --metadata</code>: inode-table, bitmap, superblock, group-descriptor and journal I/O is not in this run, so the sector plot shows only file data, directories, indirect blocks and unowned blocks.");
    if (!R.fromLog)
      notes.push("Flush requests and journal commits are not on the time axis: a saved jsonl does not record them and <code>diff</code> does not collect them (<code>ext3replay report IMAGE LOG</code> shows them).");
    if (R.axis === "seq") notes.push("The log has no timestamps (dm-log-writes has none): the horizontal axis is the log record number.");
    const T = R.totals;
    const vol = (v) => human(v.read_bytes) + " read, " + human(v.write_bytes) + " written";
    const rowsHTML = [
      ["operations", R.op.length + " (" + R.ns + " namespace, " + R.io + " reads and writes, " + R.anom.length + " anomalies)"],
      ["files and directories", String(R.files)],
      ["file data", vol(T.file_data)],
      ["metadata", vol(T.metadata)],
      ["journal", vol(T.journal)],
      ["unattributed", vol(T.unattributed)],
    ];
    if (R.start) rowsHTML.push(["capture started", new Date(R.start / 1e6).toISOString()]);
    if (R.fromLog) rowsHTML.push(["flushes, journal commits", R.flush.length + ", " + R.commit.length]);
    el.innerHTML =
      "<h2>" + esc(R.name) + "</h2>" +
      (notes.length ? '<div class="notes">' + notes.map((n) => "<p>" + n + "</p>").join("") + "</div>" : "") +
      '<table class="summary">' + rowsHTML.map((r) => "<tr><th>" + esc(r[0]) + "</th><td>" + esc(r[1]) + "</td></tr>").join("") + "</table>" +
      (R.summary.length ? "<pre>" + esc(R.summary.join("\n")) + "</pre>" : "") +
      "<h3>Timeline: one lane per file or directory</h3>" +
      '<div class="legend">' +
      Object.keys(IOCOL).map((k) => '<span style="--c:' + IOCOL[k] + '">' + k + " (bar height: bytes)</span>").join("") +
      Object.keys(OPCOL).map((k) => '<span style="--c:' + OPCOL[k] + '">' + k + "</span>").join("") +
      '<span style="--c:#888">flush</span><span style="--c:#c00">journal commit</span></div>' +
      '<div class="plot"><canvas class="axis"></canvas><div class="lanes"><canvas></canvas><div class="scroll"><div class="spacer"></div></div></div></div>' +
      "<h3>Sector x time, coloured by kind of block</h3>" +
      '<div class="legend">' + Object.keys(KCOL).map((k) => '<span style="--c:' + KCOL[k] + '">' + k + "</span>").join("") +
      "<span style=\"--c:#ccc\">pale: reads, solid: writes</span></div>" +
      '<div class="plot"><canvas class="sectors"></canvas></div>' +
      "<h3>Bytes by directory</h3><div class=\"scrollbox\"><table class=\"list dirs\"></table></div>" +
      "<h3>Anomalies</h3><div class=\"scrollbox\"><table class=\"list anomalies\"></table></div>";
    main.appendChild(el);
    R.el = el;
    R.axisC = el.querySelector("canvas.axis");
    R.lanesBox = el.querySelector(".lanes");
    R.lanesC = el.querySelector(".lanes canvas");
    R.scroll = el.querySelector(".lanes .scroll");
    R.spacer = el.querySelector(".spacer");
    R.sectC = el.querySelector("canvas.sectors");
    R.scroll.addEventListener("scroll", () => drawLanes(R));
    wire(R);
  });

  // ---- drawing ----
  // One width for the three canvases of a run, so their time axes line up.
  function plotWidth(R) { return Math.max(200, R.el.clientWidth - 2); }

  function drawAxis(R) {
    const w = plotWidth(R);
    const ctx = sizeCanvas(R.axisC, w, AXIS_H);
    const x0 = LABEL_W, pw = w - LABEL_W - 16;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, AXIS_H);
    ctx.fillStyle = "#444";
    ctx.font = "11px sans-serif";
    ctx.fillText(R.axis === "seq" ? "log record" : "seconds from the start of the log", 4, 12);
    for (const v of ticks(view[R.axis][0], view[R.axis][1], Math.max(2, pw / 90))) {
      const x = xOf(R, v, x0, pw);
      ctx.fillRect(x, 14, 1, 5);
      ctx.fillText(fmtX(R, v), x + 2, 12);
    }
    // Flushes (grey) and journal commits (red) as ticks under the scale.
    ctx.fillStyle = "#888";
    for (const v of R.flush) { const x = xOf(R, v, x0, pw); if (x >= x0 && x <= x0 + pw) ctx.fillRect(x, 22, 1, 9); }
    ctx.fillStyle = "#c00";
    for (const v of R.commit) { const x = xOf(R, v, x0, pw); if (x >= x0 && x <= x0 + pw) ctx.fillRect(x, 33, 1, 9); }
    ctx.fillStyle = "#444";
    ctx.fillText(R.fromLog ? "flushes" : "flushes (not known)", 4, 30);
    ctx.fillText(R.fromLog ? "journal commits" : "commits (not known)", 4, 41);
  }

  function drawLanes(R) {
    const w = plotWidth(R);
    const total = R.rows.length * LANE_H;
    R.spacer.style.height = total + "px";
    const h = Math.max(LANE_H * 3, Math.min(420, total));
    R.lanesBox.style.height = h + "px";
    const ctx = sizeCanvas(R.lanesC, w, h);
    const x0 = LABEL_W, pw = w - LABEL_W - 16;
    const top = R.scroll.scrollTop;
    const first = Math.floor(top / LANE_H), last = Math.min(R.rows.length - 1, Math.ceil((top + h) / LANE_H));
    const off = -top;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.font = "11px sans-serif";
    for (let r = first; r <= last; r++) {
      const y = r * LANE_H + off;
      const l = R.rows[r], L = R.lanes[l];
      if (r % 2) { ctx.fillStyle = "#f4f6f8"; ctx.fillRect(0, y, w, LANE_H); }
      ctx.fillStyle = "#222";
      const ind = 4 + L.depth * 10;
      const mark = L.kids ? (R.collapsed[l] ? "\u25b8 " : "\u25be ") : "  ";
      const name = L.pseudo ? L.path : L.path === "/" ? "/" : L.path.slice(L.path.lastIndexOf("/") + 1) + (L.dir ? "/" : "");
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, y, LABEL_W - 4, LANE_H);
      ctx.clip();
      ctx.fillText(mark + name, ind, y + LANE_H - 4);
      ctx.restore();
    }
    // Journal commits as faint lines across the lanes.
    ctx.fillStyle = "rgba(204,0,0,0.18)";
    for (const v of R.commit) { const x = xOf(R, v, x0, pw); if (x >= x0 && x <= x0 + pw) ctx.fillRect(x, 0, 1, h); }
    ctx.fillStyle = "#ccc";
    ctx.fillRect(x0 - 2, 0, 1, h);
    const lmax = Math.log2(R.maxBytes + 1);
    let bars = 0, marks = 0;
    // I/O first, namespace marks on top.
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < R.op.length; i++) {
        const r = R.opRow[i];
        if (r < first || r > last) continue;
        const io = R.op[i] <= WRITE;
        if (io !== (pass === 0)) continue;
        const x = xOf(R, R.x[i], x0, pw);
        if (x < x0 || x > x0 + pw) continue;
        const y = r * LANE_H + off;
        if (io) {
          const bh = Math.max(2, ((LANE_H - 4) * Math.log2(R.b[i] + 1)) / lmax);
          ctx.fillStyle = R.op[i] === READ ? IOCOL.read : IOCOL.write;
          ctx.fillRect(x, y + LANE_H - 2 - bh, 2, bh);
          bars++;
        } else {
          marks++;
          ctx.fillStyle = OPCOL[R.opName[i]];
          const cy = y + LANE_H / 2;
          ctx.beginPath();
          ctx.moveTo(x, cy - 5); ctx.lineTo(x + 5, cy); ctx.lineTo(x, cy + 5); ctx.lineTo(x - 5, cy);
          ctx.closePath();
          ctx.fill();
        }
      }
    }
    // What was drawn, readable from the DOM (tests; the canvas itself is opaque).
    R.lanesC.dataset.bars = bars;
    R.lanesC.dataset.marks = marks;
  }

  function drawSectors(R) {
    const w = plotWidth(R);
    const ctx = sizeCanvas(R.sectC, w, SECT_H);
    const x0 = SECT_L, pw = w - SECT_L - 16, y0 = 8, ph = SECT_H - 30;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, SECT_H);
    ctx.fillStyle = "#444";
    ctx.font = "11px sans-serif";
    ctx.fillText("sector (512 bytes)", 4, 14);
    ctx.textAlign = "right";
    for (const s of ticks(0, maxSector, 6)) {
      const y = y0 + ph - (s / maxSector) * ph;
      ctx.fillRect(x0 - 4, y, 4, 1);
      ctx.fillText(String(s), x0 - 6, y + 4);
    }
    ctx.textAlign = "left";
    for (const v of ticks(view[R.axis][0], view[R.axis][1], Math.max(2, pw / 90))) {
      const x = xOf(R, v, x0, pw);
      ctx.fillRect(x, y0 + ph, 1, 4);
      ctx.fillText(fmtX(R, v), x + 2, SECT_H - 6);
    }
    ctx.fillStyle = "#ccc";
    ctx.fillRect(x0 - 1, y0, 1, ph);
    // cols[px] lists the ops drawn at that pixel column, for hovering.
    const cols = new Array(Math.ceil(pw) + 3);
    let drawn = 0;
    for (let i = 0; i < R.op.length; i++) {
      if (R.op[i] > WRITE || R.opRow[i] < 0 && filter) continue;
      const x = xOf(R, R.x[i], x0, pw);
      if (x < x0 || x > x0 + pw) continue;
      const s0 = R.sec[i], s1 = s0 + R.b[i] / 512;
      const ya = y0 + ph - (s1 / maxSector) * ph, yb = y0 + ph - (s0 / maxSector) * ph;
      ctx.globalAlpha = R.op[i] === READ ? 0.35 : 0.9;
      ctx.fillStyle = KCOL[KCLASS[KINDS[R.k[i]]]];
      ctx.fillRect(x - 1, Math.min(ya, yb - 3), 3, Math.max(3, yb - ya));
      drawn++;
      const c = Math.round(x - x0);
      (cols[c] || (cols[c] = [])).push(i);
    }
    ctx.globalAlpha = 1;
    R.sectC.dataset.drawn = drawn;
    R.sectGeom = { x0, pw, y0, ph, cols };
  }

  function drawTables(R) {
    const dirs = R.dirs.filter((d) => !filter || d.path.includes(filter));
    dirs.sort((a, b) => b.rAll + b.wAll - (a.rAll + a.wAll) || (a.path < b.path ? -1 : 1));
    const shown = dirs.slice(0, 200);
    R.el.querySelector("table.dirs").innerHTML =
      '<tr><th>directory</th><th class="n">files</th><th class="n">read</th><th class="n">written</th><th class="n">read, with subdirectories</th><th class="n">written, with subdirectories</th></tr>' +
      shown.map((d) => "<tr><td>" + esc(d.path) + '</td><td class="n">' + d.files + '</td><td class="n">' + human(d.r) + '</td><td class="n">' + human(d.w) +
        '</td><td class="n">' + human(d.rAll) + '</td><td class="n">' + human(d.wAll) + "</td></tr>").join("") +
      (dirs.length > shown.length ? '<tr><td colspan="6">… ' + (dirs.length - shown.length) + " more (filter by path to see them)</td></tr>" : "");
    const an = R.anom.filter((a) => !filter || a.path.includes(filter));
    R.el.querySelector("table.anomalies").innerHTML = an.length
      ? "<tr><th>record</th><th>path</th><th>kind</th><th>sector</th><th>reason</th></tr>" +
        an.slice(0, 1000).map((a) => "<tr><td>#" + a.seq + "</td><td>" + esc(a.path || "-") + "</td><td>" + esc(a.kind) + "</td><td>" + a.sector + "</td><td>" + esc(a.reason) + "</td></tr>").join("")
      : "<tr><td>none</td></tr>";
  }

  function redraw(relayout) {
    saveHash();
    for (const R of runs) {
      if (relayout) { layout(R); drawTables(R); }
      drawAxis(R);
      drawLanes(R);
      drawSectors(R);
    }
  }

  // ---- interaction ----
  function wire(R) {
    let drag = null;
    const startDrag = (ev, x0, pw) => { drag = { x: ev.clientX, x0, pw, rect: ev.currentTarget.getBoundingClientRect() }; };
    const endDrag = (ev) => {
      if (!drag) return;
      const a = drag.x - drag.rect.left, b = ev.clientX - drag.rect.left;
      if (Math.abs(a - b) > 4) {
        const v0 = vOf(R, Math.min(a, b), drag.x0, drag.pw), v1 = vOf(R, Math.max(a, b), drag.x0, drag.pw);
        view[R.axis] = [v0, v1];
        redraw(false);
      }
      drag = null;
    };
    R.scroll.addEventListener("mousedown", (ev) => {
      const x = ev.clientX - R.scroll.getBoundingClientRect().left;
      if (x < LABEL_W) {
        const y = ev.clientY - R.scroll.getBoundingClientRect().top + R.scroll.scrollTop;
        const r = Math.floor(y / LANE_H);
        const l = R.rows[r];
        if (l !== undefined && R.lanes[l].kids) { R.collapsed[l] ^= 1; layout(R); drawLanes(R); drawSectors(R); }
        return;
      }
      startDrag(ev, LABEL_W, plotWidth(R) - LABEL_W - 16);
    });
    R.scroll.addEventListener("mouseup", endDrag);
    R.scroll.addEventListener("mousemove", (ev) => {
      const rect = R.scroll.getBoundingClientRect();
      const mx = ev.clientX - rect.left, y = ev.clientY - rect.top + R.scroll.scrollTop;
      const r = Math.floor(y / LANE_H), l = R.rows[r];
      if (l === undefined) return hideTip();
      if (mx < LABEL_W) return showTip(ev, R.lanes[l].path + (R.lanes[l].kids ? "\n(click to " + (R.collapsed[l] ? "expand" : "collapse") + ")" : ""));
      const pw = plotWidth(R) - LABEL_W - 16;
      let best = -1, bd = 6;
      for (let i = 0; i < R.op.length; i++) {
        if (R.opRow[i] !== r) continue;
        const d = Math.abs(xOf(R, R.x[i], LABEL_W, pw) - mx);
        if (d < bd) { bd = d; best = i; }
      }
      if (best < 0) return showTip(ev, R.lanes[l].path);
      showTip(ev, opText(R, best));
    });
    R.scroll.addEventListener("mouseleave", hideTip);
    R.sectC.addEventListener("mousedown", (ev) => startDrag(ev, R.sectGeom.x0, R.sectGeom.pw));
    R.sectC.addEventListener("mouseup", endDrag);
    R.sectC.addEventListener("mousemove", (ev) => {
      const g = R.sectGeom, rect = R.sectC.getBoundingClientRect();
      const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
      const c = Math.round(mx - g.x0);
      let best = -1;
      for (let d = 0; d <= 3 && best < 0; d++) {
        for (const cc of [c - d, c + d]) {
          for (const i of g.cols[cc] || []) {
            const s0 = R.sec[i], s1 = s0 + R.b[i] / 512;
            const ya = g.y0 + g.ph - (s1 / maxSector) * g.ph, yb = g.y0 + g.ph - (s0 / maxSector) * g.ph;
            if (my >= Math.min(ya, yb - 2) - 2 && my <= yb + 2) best = i;
          }
        }
      }
      if (best < 0) return hideTip();
      showTip(ev, opText(R, best));
    });
    R.sectC.addEventListener("mouseleave", hideTip);
    R.sectC.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const g = R.sectGeom, rect = R.sectC.getBoundingClientRect();
      const at = vOf(R, ev.clientX - rect.left, g.x0, g.pw);
      const f = ev.deltaY > 0 ? 1.25 : 0.8;
      const d = view[R.axis];
      view[R.axis] = [at - (at - d[0]) * f, at + (d[1] - at) * f];
      redraw(false);
    }, { passive: false });
    for (const c of [R.sectC, R.scroll]) c.addEventListener("dblclick", () => { resetView(); redraw(false); });
  }

  document.getElementById("reset").addEventListener("click", () => { resetView(); redraw(false); });
  document.getElementById("expand").addEventListener("click", () => { for (const R of runs) R.collapsed.fill(0); redraw(true); });
  document.getElementById("collapse").addEventListener("click", () => {
    for (const R of runs) R.lanes.forEach((L, i) => { R.collapsed[i] = L.kids && L.depth >= 1 ? 1 : 0; });
    redraw(true);
  });
  let pending = 0;
  document.getElementById("filter").value = filter;
  document.getElementById("filter").addEventListener("input", (ev) => {
    clearTimeout(pending);
    pending = setTimeout(() => { filter = ev.target.value; redraw(true); }, 120);
  });
  window.addEventListener("resize", () => redraw(false));

  redraw(true);

  // Machine-readable record of what was drawn, for tests and for people who
  // want to copy: every namespace operation as a row of a hidden table (its
  // mark on the timeline) and every path of the run. Built once, after the
  // first drawing, from the same arrays the canvases use.
  runs.forEach((R, ri) => {
    const marks = [];
    for (let i = 0; i < R.op.length; i++) {
      if (R.op[i] <= WRITE) continue;
      marks.push('<tr class="mark" data-run="' + ri + '" data-seq="' + R.seq[i] + '" data-op="' + R.opName[i] + '" data-path="' + esc(R.paths[R.p[i]]) +
        '" data-to="' + esc(R.paths[R.to[i]]) + '" data-lane="' + R.opLane[i] + '"></tr>');
    }
    const t = document.createElement("table");
    t.className = "marks";
    t.hidden = true;
    t.dataset.run = ri;
    t.innerHTML = marks.join("");
    R.el.appendChild(t);
    const ul = document.createElement("ul");
    ul.className = "paths";
    ul.hidden = true;
    ul.dataset.run = ri;
    ul.innerHTML = R.paths.slice(1).map((p) => '<li data-path="' + esc(p) + '"></li>').join("");
    R.el.appendChild(ul);
  });
  document.body.dataset.rendered = "true";
  // Milliseconds from the start of navigation to the end of the first drawing
  // (scripts/bench-report.sh reads it).
  document.body.dataset.renderMs = Math.round(performance.now());
})();
