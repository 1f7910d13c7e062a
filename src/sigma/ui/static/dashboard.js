// Sigma dashboard: one EventSource (/ui/events) feeds an in-page copy of the cluster's views;
// rendering is batched into animation frames and node tiles are updated in place, so a
// thousand nodes reporting every few seconds costs a few style writes, not a page rebuild.
"use strict";
(() => {
  const KINDS = ["nodes", "nodemetrics", "pods", "deployments", "batchjobs", "predictivescalers", "events"];
  const DENSE_AT = 200;          // more nodes than this: small tiles, names on hover
  const STALE_S = 30;            // a NodeMetric older than this dims its tile
  const HOT = /evict|preempt|oom|kill/i;
  const state = Object.fromEntries(KINDS.map((k) => [k, new Map()]));
  const dirty = new Set();       // kinds changed since the last frame
  const dirtyTiles = new Set();  // node names whose tile must be redrawn
  const tiles = new Map();       // node name -> tile element
  const stats = { snapshots: 0, changes: 0, renders: 0, firstFullRenderMs: null, lastRenderMs: null, lastUpdate: 0 };
  let order = [];
  let selected = null;
  let frame = 0;
  window.sigmaDashboard = { state, stats };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const keyOf = (v) => (v.ns ? `${v.ns}/${v.name}` : v.name);
  const num = (v) => (typeof v === "number" && isFinite(v) ? v : 0);
  const pct = (part, whole) => (whole > 0 ? Math.max(0, Math.min(100, (100 * part) / whole)) : 0);
  const cores = (m) => (m == null ? "–" : (m / 1000).toFixed(m % 1000 === 0 ? 0 : 2));
  const bytes = (b) => {
    if (b == null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i += 1; }
    return `${b.toFixed(b >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  };

  // -- the feed ------------------------------------------------------------------------
  function connect() {
    const source = new EventSource("/ui/events");
    source.onopen = () => setConn(true);
    source.onerror = () => setConn(false);  // EventSource reconnects; the server resends a snapshot
    source.addEventListener("snapshot", (e) => {
      const data = JSON.parse(e.data);
      for (const kind of KINDS) {
        state[kind].clear();
        for (const v of data[kind] || []) state[kind].set(keyOf(v), v);
        dirty.add(kind);
      }
      for (const name of tiles.keys()) dirtyTiles.add(name);
      for (const name of state.nodes.keys()) dirtyTiles.add(name);
      stats.snapshots += 1;
      schedule();
    });
    source.addEventListener("changes", (e) => {
      for (const c of JSON.parse(e.data)) {
        if (c.item === null) state[c.kind].delete(c.key);
        else state[c.kind].set(c.key, c.item);
        dirty.add(c.kind);
        if (c.kind === "nodes" || c.kind === "nodemetrics") dirtyTiles.add(c.key);
      }
      stats.changes += 1;
      schedule();
    });
  }

  function setConn(on) {
    const c = $("conn");
    c.textContent = on ? "live" : "reconnecting…";
    c.className = `conn ${on ? "on" : "off"}`;
  }

  function schedule() {
    stats.lastUpdate = Date.now();
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const started = performance.now();
    const nodesChanged = dirty.has("nodes") || dirty.has("nodemetrics");
    if (nodesChanged) renderSummary();
    if (nodesChanged || dirty.has("__order")) renderTiles();
    if (dirty.has("deployments")) renderDeployments();
    if (dirty.has("batchjobs")) renderJobs();
    if (dirty.has("predictivescalers")) renderScalers();
    if (dirty.has("pods")) { renderPods(); renderSummary(); }
    if (dirty.has("events")) renderEvents();
    if (selected && (nodesChanged || dirty.has("pods"))) renderDetail();
    dirty.clear();
    stats.renders += 1;
    stats.lastRenderMs = performance.now() - started;
    if (stats.firstFullRenderMs === null && stats.snapshots > 0) stats.firstFullRenderMs = performance.now();
  }

  // -- summary -------------------------------------------------------------------------
  function renderSummary() {
    const t = { nodes: 0, ready: 0, cpu: 0, mem: 0, prodCpu: 0, batchCpu: 0, prodMem: 0, batchMem: 0, allocCpu: 0, allocMem: 0 };
    for (const n of state.nodes.values()) {
      const m = state.nodemetrics.get(n.name) || {};
      t.nodes += 1; t.ready += n.ready ? 1 : 0;
      t.cpu += num(n.cpu); t.mem += num(n.memory);
      t.prodCpu += num(m.prodCpu); t.batchCpu += num(m.batchCpu);
      t.prodMem += num(m.prodMemory); t.batchMem += num(m.batchMemory);
      t.allocCpu += num(n.batchCpu); t.allocMem += num(n.batchMemory);
    }
    const pods = { Running: 0, Pending: 0, prod: 0, batch: 0 };
    for (const p of state.pods.values()) {
      if (p.phase in pods) pods[p.phase] += 1;
      if (p.phase === "Running" && p.tier in pods) pods[p.tier] += 1;
    }
    const cards = [
      ["nodes", `${t.ready}/${t.nodes}`, "ready / total"],
      ["CPU cores", cores(t.cpu), `prod ${cores(t.prodCpu)} · batch ${cores(t.batchCpu)}`],
      ["batch CPU allocatable", cores(t.allocCpu), `${pct(t.allocCpu, t.cpu).toFixed(0)}% of capacity reclaimed`],
      ["memory", bytes(t.mem), `prod ${bytes(t.prodMem)} · batch ${bytes(t.batchMem)}`],
      ["batch memory allocatable", bytes(t.allocMem), `${pct(t.allocMem, t.mem).toFixed(0)}% of capacity`],
      ["pods running", String(pods.Running), `prod ${pods.prod} · batch ${pods.batch} · pending ${pods.Pending}`],
    ];
    const box = $("summary");
    box.replaceChildren(...cards.map(([k, v, s]) => {
      const c = el("div", "card");
      c.dataset.card = k;
      c.append(el("div", "k", k), el("div", "v", v), el("div", "s", s));
      return c;
    }));
  }

  // -- node tiles ----------------------------------------------------------------------
  function makeTile(name) {
    const t = el("div", "tile");
    t.dataset.node = name;
    t.append(el("div", "tname", name));
    for (const r of ["cpu", "mem"]) {
      const bar = el("div", `bar ${r}`);
      bar.append(el("span", "prod"), el("span", "batch"), el("span", "alloc"));
      t.append(bar);
    }
    t.addEventListener("click", () => { selected = selected === name ? null : name; renderDetail(); });
    tiles.set(name, t);
    return t;
  }

  function setBar(bar, prod, batch, alloc, cap) {
    const [p, b, a] = bar.children;
    const pw = pct(prod, cap);
    p.style.width = `${pw}%`;
    b.style.left = `${pw}%`;
    b.style.width = `${Math.min(pct(batch, cap), 100 - pw)}%`;
    a.style.left = `${pw}%`;
    a.style.width = `${Math.min(pct(alloc, cap), 100 - pw)}%`;
  }

  function updateTile(name) {
    const n = state.nodes.get(name);
    const t = tiles.get(name);
    if (!n || !t) return;
    const m = state.nodemetrics.get(name) || {};
    const [, cpuBar, memBar] = t.children;
    setBar(cpuBar, num(m.prodCpu), num(m.batchCpu), num(n.batchCpu), num(n.cpu));
    setBar(memBar, num(m.prodMemory), num(m.batchMemory), num(n.batchMemory), num(n.memory));
    const d = t.dataset;
    d.cpu = n.cpu ?? ""; d.memory = n.memory ?? "";
    d.batchAllocCpu = n.batchCpu ?? ""; d.batchAllocMemory = n.batchMemory ?? "";
    d.prodCpu = m.prodCpu ?? ""; d.batchCpu = m.batchCpu ?? "";
    d.prodMemory = m.prodMemory ?? ""; d.batchMemory = m.batchMemory ?? ""; d.ts = m.ts ?? "";
    t.classList.toggle("notready", !n.ready);
    // NodeMetric timestamps are RFC 3339 strings (numbers from older agents); either ages the tile.
    const reported = typeof m.ts === "number" ? m.ts * 1000 : Date.parse(m.ts ?? "");
    t.classList.toggle("stale", Number.isFinite(reported) && Date.now() - reported > STALE_S * 1000);
    t.title = `${name}${n.ready ? "" : " (NotReady)"}\n` +
      `CPU: prod ${cores(m.prodCpu)} + batch ${cores(m.batchCpu)} of ${cores(n.cpu)} cores; batch allocatable ${cores(n.batchCpu)}\n` +
      `memory: prod ${bytes(m.prodMemory)} + batch ${bytes(m.batchMemory)} of ${bytes(n.memory)}; batch allocatable ${bytes(n.batchMemory)}`;
  }

  function sortKey(mode) {
    const m = (name) => state.nodemetrics.get(name) || {};
    if (mode === "prod") return (a, b) => pct(num(m(b).prodCpu), num(state.nodes.get(b).cpu)) - pct(num(m(a).prodCpu), num(state.nodes.get(a).cpu));
    if (mode === "batch") return (a, b) => num(m(b).batchCpu) - num(m(a).batchCpu);
    if (mode === "room") return (a, b) => num(state.nodes.get(b).batchCpu) - num(state.nodes.get(a).batchCpu);
    return null;
  }

  const collator = new Intl.Collator(undefined, { numeric: true });
  function renderTiles() {
    const box = $("tiles");
    for (const name of [...tiles.keys()]) {
      if (!state.nodes.has(name)) { tiles.get(name).remove(); tiles.delete(name); }
    }
    const filter = $("node-filter").value.trim().toLowerCase();
    let names = [...state.nodes.keys()].filter((n) => !filter || n.toLowerCase().includes(filter));
    names.sort(collator.compare);
    const cmp = sortKey($("node-sort").value);
    if (cmp) names = names.sort((a, b) => cmp(a, b) || collator.compare(a, b));
    box.classList.toggle("dense", names.length > DENSE_AT);
    for (const name of names) {
      if (!tiles.has(name)) { makeTile(name); dirtyTiles.add(name); }
    }
    for (const name of dirtyTiles) updateTile(name);
    dirtyTiles.clear();
    if (names.length !== order.length || names.some((n, i) => n !== order[i])) {
      box.replaceChildren(...names.map((n) => tiles.get(n)));
      order = names;
    }
    $("node-count").textContent = `${state.nodes.size}${filter ? ` (${names.length} shown)` : ""}`;
  }

  function renderDetail() {
    const box = $("node-detail");
    for (const [name, t] of tiles) t.classList.toggle("sel", name === selected);
    const n = selected && state.nodes.get(selected);
    if (!n) { box.hidden = true; return; }
    const m = state.nodemetrics.get(selected) || {};
    const rows = [
      ["", "CPU (cores)", "memory"],
      ["capacity", cores(n.cpu), bytes(n.memory)],
      ["allocatable", cores(n.allocCpu), bytes(n.allocMemory)],
      ["prod use (peak)", `${cores(m.prodCpu)} (${cores(m.prodCpuPeak)})`, `${bytes(m.prodMemory)} (${bytes(m.prodMemoryPeak)})`],
      ["batch use", cores(m.batchCpu), bytes(m.batchMemory)],
      ["batch allocatable (Level-0)", cores(n.batchCpu), bytes(n.batchMemory)],
      ["predicted prod", cores(m.predictedCpu), bytes(m.predictedMemory)],
    ];
    const table = el("table");
    for (const r of rows) { const tr = el("tr"); for (const c of r) tr.append(el("td", "", c)); table.append(tr); }
    const pods = [...state.pods.values()].filter((p) => p.node === selected);
    const list = el("div", "muted", pods.length ? `pods: ${pods.map((p) => `${p.ns}/${p.name} (${p.tier}, ${p.phase})`).join(", ")}` : "no pods");
    box.replaceChildren(el("h2", "", `${selected} ${n.ready ? "" : "· NotReady"}`), table, list);
    box.hidden = false;
  }

  // -- workloads -----------------------------------------------------------------------
  function pbar(parts, whole) {
    const bar = el("div", "pbar");
    for (const [cls, v] of parts) { const s = el("span", cls); s.style.width = `${pct(v, whole)}%`; bar.append(s); }
    return bar;
  }

  function renderDeployments() {
    const rows = [...state.deployments.values()].sort((a, b) => collator.compare(keyOf(a), keyOf(b)));
    $("deployments").tBodies[0].replaceChildren(...rows.map((d) => {
      const tr = el("tr");
      tr.dataset.deploy = keyOf(d);
      const ready = el("td", "ready", `${d.ready}/${d.replicas}`);
      const bar = el("td");
      bar.append(pbar([["ok", d.ready]], Math.max(d.replicas, d.ready)));
      tr.append(el("td", "", keyOf(d)), ready, bar, el("td", "", String(d.updated)));
      return tr;
    }));
    if (!rows.length) $("deployments").tBodies[0].replaceChildren(rowText("no deployments", 4));
  }

  function rowText(text, span) {
    const tr = el("tr"); const td = el("td", "placeholder", text); td.colSpan = span; tr.append(td); return tr;
  }

  function depth(task, byName, seen = new Set()) {
    if (seen.has(task.name)) return 0;
    seen.add(task.name);
    return task.deps.length ? 1 + Math.max(...task.deps.map((d) => (byName.has(d) ? depth(byName.get(d), byName, seen) : 0))) : 0;
  }

  function renderJobs() {
    const jobs = [...state.batchjobs.values()].sort((a, b) => collator.compare(keyOf(a), keyOf(b)));
    const box = $("batchjobs");
    if (!jobs.length) { box.replaceChildren(el("div", "placeholder", "no batch jobs")); return; }
    box.replaceChildren(...jobs.map((j) => {
      const card = el("div", "job");
      card.dataset.job = keyOf(j);
      const head = el("div", "job-head");
      head.append(el("strong", "", keyOf(j)), el("span", `phase ${j.phase}`, j.phase), el("span", "muted", `queue ${j.queue}`));
      card.append(head);
      const byName = new Map(j.tasks.map((t) => [t.name, t]));
      // DAG order: a task after everything it depends on (stable within one stage).
      const tasks = j.tasks.map((t, i) => [depth(t, byName), i, t]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (const [stage, , t] of tasks) {
        const row = el("div", "task");
        row.dataset.task = t.name;
        row.dataset.succeeded = t.succeeded; row.dataset.running = t.running;
        row.dataset.failed = t.failed; row.dataset.instances = t.instances; row.dataset.state = t.state;
        const name = el("div");
        name.append(el("span", "", `${"· ".repeat(stage)}${t.name} `), el("span", "deps", t.deps.length ? `← ${t.deps.join(", ")}` : ""));
        name.title = `${t.state}: ${t.succeeded} succeeded, ${t.running} running, ${t.pending} pending, ${t.failed} failed`;
        row.append(name, pbar([["ok", t.succeeded], ["run", t.running], ["fail", t.failed]], t.instances),
          el("span", "count", `${t.succeeded}/${t.instances}`));
        card.append(row);
      }
      if (j.message) card.append(el("div", "muted", j.message));
      return card;
    }));
  }

  function sparkline(forecast, actual) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const all = forecast.concat(actual);
    if (!all.length) return svg;
    const xs = all.map((p) => p[0]); const ys = all.map((p) => p[1]);
    const [x0, x1, y1] = [Math.min(...xs), Math.max(...xs), Math.max(...ys, 1e-9)];
    svg.setAttribute("viewBox", "0 0 300 60");
    svg.setAttribute("preserveAspectRatio", "none");
    for (const [series, colour, dash] of [[forecast, "#2fbf71", "4 3"], [actual, "#4c8dff", ""]]) {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", series.map(([x, y]) => `${(300 * (x - x0)) / (x1 - x0 || 1)},${58 - (54 * y) / y1}`).join(" "));
      line.setAttribute("fill", "none"); line.setAttribute("stroke", colour); line.setAttribute("stroke-width", "1.5");
      if (dash) line.setAttribute("stroke-dasharray", dash);
      svg.append(line);
    }
    return svg;
  }

  function renderScalers() {
    const scalers = [...state.predictivescalers.values()];
    const box = $("scalers");
    if (!scalers.length) {
      box.replaceChildren(el("div", "placeholder", "No PredictiveScalers are defined. Create one (sigma.io/v1 PredictiveScaler) to see its forecast against the actual load here."));
      return;
    }
    box.replaceChildren(...scalers.map((s) => {
      const card = el("div", "scaler");
      card.dataset.scaler = keyOf(s);
      const err = s.error == null ? "–" : `${(100 * s.error).toFixed(1)}%`;
      card.append(el("div", "", `${keyOf(s)} → ${s.target || "?"} · replicas ${s.current ?? "–"} → ${s.desired ?? "–"} · forecast error ${err}`),
        sparkline(s.forecast, s.actual), el("div", "legend", "dashed green: forecast · blue: actual"));
      return card;
    }));
  }

  function renderPods() {
    const counts = new Map();
    const pending = [];
    for (const p of state.pods.values()) {
      const k = `${p.tier}/${p.phase}`;
      counts.set(k, (counts.get(k) || 0) + 1);
      if (p.phase === "Pending" && pending.length < 20) pending.push(p);
    }
    const table = el("table", "grid");
    const phases = ["Pending", "Running", "Succeeded", "Failed", "Terminating"];
    const head = el("tr"); head.append(el("th", "", "tier"), ...phases.map((p) => el("th", "", p)));
    table.append(head);
    for (const tier of ["prod", "batch", "other"]) {
      const tr = el("tr"); tr.dataset.tier = tier;
      tr.append(el("td", "", tier), ...phases.map((p) => el("td", "", String(counts.get(`${tier}/${p}`) || 0))));
      table.append(tr);
    }
    const list = el("div", "muted", pending.length ? `pending: ${pending.map((p) => `${p.ns}/${p.name}${p.reason ? ` (${p.reason})` : ""}`).join(", ")}` : "");
    $("pods").replaceChildren(table, list);
  }

  function renderEvents() {
    const events = [...state.events.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, 100);
    $("events").replaceChildren(...events.map((e) => {
      const li = el("li", `${e.type === "Warning" ? "warn" : ""} ${HOT.test(e.reason) ? "hot" : ""}`);
      li.append(el("span", "t", e.time.replace("T", " ").replace("Z", "")), el("span", "reason", e.reason),
        el("span", "muted", `${e.ns}/${e.object}${e.count > 1 ? ` ×${e.count}` : ""}: `), el("span", "", e.message));
      return li;
    }));
    if (!events.length) $("events").replaceChildren(el("li", "placeholder", "no events"));
  }

  $("node-filter").addEventListener("input", () => { dirty.add("__order"); schedule(); });
  $("node-sort").addEventListener("change", () => { dirty.add("__order"); schedule(); });
  setInterval(() => {
    $("updated").textContent = stats.lastUpdate ? `updated ${Math.round((Date.now() - stats.lastUpdate) / 1000)}s ago` : "";
  }, 1000);
  connect();
})();
