// The board's page: live view, scores, teaching, training, metrics, samples, classes, status.
// Plain JavaScript served by the board itself (no framework, no build step, nothing from a CDN).
// Live data comes from /api/events (server-sent events); every change is a command sent to
// /api/command/<name> with the session's CSRF token, exactly like MQTT's cmd/<name>.
"use strict";

const $ = (id) => document.getElementById(id);
const FRAME_PERIOD = 100; // ms: at most 10 live-view frames a second
const GALLERY_PAGE = 48;

const page = {
  csrf: null,
  commands: new Set(),
  status: null,
  prediction: null,
  losses: [],
  metrics: null,
  health: null,
  galleryClass: null,
  galleryOffset: 0,
  galleryTotal: 0,
};

// --- helpers --------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.includes("-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

let toastTimer = null;
function toast(text, error = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("error", error);
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), error ? 5000 : 2200);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)}%`;
}

function bytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(ts) {
  const seconds = Date.now() / 1000 - ts;
  if (seconds < 90) return "just now";
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ts * 1000).toLocaleDateString();
}

function loggedOut() {
  location.href = "/login";
}

// Every command goes through here: POST with the CSRF token; the reply is the command's result.
async function command(name, fields = {}, { quiet = false } = {}) {
  let result;
  try {
    const response = await fetch(`/api/command/${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": page.csrf },
      body: JSON.stringify(fields),
      credentials: "same-origin",
    });
    if (response.status === 401) { loggedOut(); return { ok: false, error: "not logged in" }; }
    result = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  } catch (error) {
    result = { ok: false, error: `the board did not answer (${error.message})` };
  }
  if (!result.ok && !quiet) toast(result.error || "refused", true);
  return result;
}

// A small modal: a question, optionally with a text field; resolves to the text, true, or null.
function ask(text, { input = null, ok = "OK", danger = false } = {}) {
  const dialog = $("dialog");
  $("dialog-text").textContent = text;
  const field = $("dialog-input");
  field.hidden = input === null;
  field.value = input || "";
  $("dialog-ok").textContent = ok;
  $("dialog-ok").className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") resolve(null);
      else resolve(input === null ? true : field.value.trim());
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    if (input !== null) field.select();
  });
}

// --- live view ------------------------------------------------------------------------------

let lastFrame = 0;

async function whenVisible() {
  if (!document.hidden) return;
  await new Promise((resolve) => {
    document.addEventListener("visibilitychange", function wake() {
      if (!document.hidden) { document.removeEventListener("visibilitychange", wake); resolve(); }
    });
  });
}

// Asks for the next frame only after showing the previous one, and only while the page is
// visible: the board encodes nothing for a closed or hidden page.
async function frameLoop() {
  const img = $("live");
  for (;;) {
    await whenVisible();
    const started = performance.now();
    try {
      const response = await fetch(`/api/frame?after=${lastFrame}`, { cache: "no-store" });
      if (response.status === 401) { loggedOut(); return; }
      if (response.status === 200) {
        const number = Number(response.headers.get("X-Frame"));
        const url = URL.createObjectURL(await response.blob());
        const previous = img.src;
        img.src = url;
        await img.decode().catch(() => {});
        if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
        lastFrame = number;
        img.dataset.frame = String(number);
        $("no-frame").hidden = true;
      } else if (response.status === 204) {
        $("no-frame").hidden = Boolean(img.dataset.frame);
      }
    } catch (error) {
      await sleep(1000);
    }
    const rest = FRAME_PERIOD - (performance.now() - started);
    if (rest > 0) await sleep(rest);
  }
}

// --- rendering ------------------------------------------------------------------------------

function classes() {
  return page.status ? page.status.classes : [];
}

function renderScores() {
  const box = $("scores");
  const prediction = page.prediction;
  const scores = prediction ? prediction.scores : {};
  const names = classes();
  if (box.dataset.names !== names.join("\n")) {
    box.replaceChildren(...names.map((name) => el("div", { class: "score", dataset: { class: name } },
      el("span", { class: "name", textContent: name, title: name }),
      el("span", { class: "track" }, el("span", { class: "fill" })),
      el("span", { class: "value", textContent: "–" }))));
    box.dataset.names = names.join("\n");
  }
  for (const row of box.children) {
    const value = scores[row.dataset.class];
    row.querySelector(".fill").style.width = `${Math.round((value || 0) * 100)}%`;
    row.querySelector(".value").textContent = value === undefined ? "–" : percent(value);
    row.classList.toggle("top", Boolean(prediction && prediction.known !== false &&
      prediction.class === row.dataset.class));
  }
  const now = document.querySelector(".now");
  if (prediction) {
    const known = prediction.known !== false;
    $("now-class").textContent = prediction.class;
    $("now-conf").textContent = known ? percent(prediction.confidence) : "";
    now.classList.toggle("unknown", !known);
  }
  for (const button of $("teach").children) {
    button.classList.toggle("top", Boolean(prediction && prediction.known !== false &&
      prediction.class === button.dataset.class));
  }
}

function renderTeach() {
  const box = $("teach");
  const names = classes();
  const samples = page.status ? page.status.samples : {};
  if (box.dataset.names !== names.join("\n")) {
    box.replaceChildren(...names.map((name) => el("button", {
      class: "teach-btn", type: "button", dataset: { class: name }, onclick: () => teach(name),
    }, el("span", { class: "name", textContent: name }), el("span", { class: "count" }))));
    box.dataset.names = names.join("\n");
  }
  for (const button of box.children) {
    const n = samples[button.dataset.class] || 0;
    button.querySelector(".count").textContent = `${n} sample${n === 1 ? "" : "s"}`;
    button.dataset.count = String(n);
  }
  if (!names.length) box.replaceChildren(el("p", { class: "muted", textContent: "No classes yet: add one below." }));
}

async function teach(name) {
  const button = document.querySelector(`.teach-btn[data-class="${CSS.escape(name)}"]`);
  if (button) { button.classList.remove("flash"); void button.offsetWidth; button.classList.add("flash"); }
  const result = await command("sample", { class: name });
  if (result.ok) toast(`${name}: ${result.count} sample${result.count === 1 ? "" : "s"}`);
}

function renderTraining() {
  const training = page.status && page.status.state === "training";
  const button = $("train");
  button.textContent = training ? "Stop" : "Train";
  button.classList.toggle("danger", training);
  button.classList.toggle("primary", !training);
  const pill = $("state");
  pill.textContent = page.status ? page.status.state : "connecting";
  pill.classList.toggle("training", training);
  const last = page.losses[page.losses.length - 1];
  if (last && last.loss !== null) {
    $("loss-text").textContent = `epoch ${last.epoch}: loss ${last.loss.toFixed(4)} (${last.samples} samples)`;
  } else if (page.status && page.status.last_loss !== null && page.status.last_loss !== undefined) {
    $("loss-text").textContent = `last loss ${page.status.last_loss.toFixed(4)}`;
  }
  drawChart();
}

function drawChart() {
  const canvas = $("loss-chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  const style = getComputedStyle(document.documentElement);
  const points = page.losses.filter((p) => p.loss !== null);
  canvas.dataset.points = String(points.length);
  g.clearRect(0, 0, width, height);
  g.font = "12px system-ui, sans-serif";
  g.fillStyle = style.getPropertyValue("--muted");
  g.strokeStyle = style.getPropertyValue("--line");
  const left = 44, right = 8, top = 8, bottom = 22;
  g.strokeRect(left, top, width - left - right, height - top - bottom);
  if (!points.length) {
    const hint = "the loss of each epoch shows here";
    g.fillText(hint, left + (width - left - right - g.measureText(hint).width) / 2, height / 2);
    return;
  }
  const first = points[0].epoch, lastEpoch = points[points.length - 1].epoch;
  const maxLoss = Math.max(...points.map((p) => p.loss)) || 1;
  const x = (epoch) => left + (lastEpoch === first ? 0.5 : (epoch - first) / (lastEpoch - first)) * (width - left - right);
  const y = (loss) => top + (1 - loss / maxLoss) * (height - top - bottom);
  g.fillText(maxLoss.toFixed(2), 4, top + 10);
  g.fillText("0", 30, height - bottom);
  g.fillText(`epoch ${first}`, left, height - 6);
  const endLabel = `epoch ${lastEpoch}`;
  g.fillText(endLabel, width - right - g.measureText(endLabel).width, height - 6);
  g.strokeStyle = style.getPropertyValue("--accent");
  g.lineWidth = 2;
  g.beginPath();
  points.forEach((p, i) => (i ? g.lineTo(x(p.epoch), y(p.loss)) : g.moveTo(x(p.epoch), y(p.loss))));
  g.stroke();
  if (points.length === 1) {
    g.fillStyle = style.getPropertyValue("--accent");
    g.beginPath(); g.arc(x(first), y(points[0].loss), 3, 0, 2 * Math.PI); g.fill();
  }
}

function renderMetrics() {
  const box = $("metrics");
  const m = page.metrics;
  $("evaluate").hidden = !page.commands.has("evaluate");
  if (!m) return;
  // Rows and columns in the classes' order; what else was said (unknown) after them.
  const order = classes();
  const names = Object.keys(m.confusion).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const predicted = [...names];
  for (const t of names) {
    for (const p of Object.keys(m.confusion[t])) if (!predicted.includes(p)) predicted.push(p);
  }
  const table = el("table", {},
    el("tr", {}, el("th", { textContent: "true \\ said" }), ...predicted.map((p) => el("th", { textContent: p }))),
    ...names.map((t) => el("tr", {}, el("th", { textContent: t }),
      ...predicted.map((p) => el("td", { class: p === t ? "hit" : "", textContent: String(m.confusion[t][p] || 0) })))));
  const recall = Object.entries(m.recall).map(([name, r]) => `${name} ${percent(r)}`).join(" · ");
  box.replaceChildren(
    el("p", {}, el("span", { class: "big", id: "accuracy", textContent: percent(m.accuracy) }), " accuracy"),
    el("p", { class: "muted", textContent: `${m.method}, ${m.samples} samples, ${when(m.ts)}` }),
    el("p", { textContent: `recall: ${recall || "–"}` }),
    m.unknown_rate === null || m.unknown_rate === undefined ? null
      : el("p", { class: "muted", textContent: `taught samples called unknown: ${percent(m.unknown_rate)}` }),
    names.length ? el("div", { class: "scroll" }, table) : null,
  );
}

function renderClasses() {
  const list = $("classes");
  const names = classes();
  const samples = page.status ? page.status.samples : {};
  const editable = page.commands.has("class");
  list.replaceChildren(...names.map((name) => el("li", { dataset: { class: name } },
    el("span", { class: "name", textContent: name, title: name }),
    el("span", { class: "count", textContent: String(samples[name] || 0) }),
    editable ? el("button", { type: "button", textContent: "Rename", onclick: () => renameClass(name) }) : null,
    editable ? el("button", { type: "button", class: "danger", textContent: "Remove", onclick: () => removeClass(name) }) : null)));
  $("add-class").hidden = !editable;
  const capacity = page.status && page.status.capacity;
  $("capacity").textContent = capacity ? `${names.length} of ${capacity} class slots in use` : "";
}

async function addClass(event) {
  event.preventDefault();
  const name = $("new-class").value.trim();
  if (!name) return;
  const result = await command("class", { add: name });
  if (result.ok) { $("new-class").value = ""; toast(`class ${name} added`); }
}

async function renameClass(name) {
  const to = await ask(`Rename the class "${name}" to:`, { input: name, ok: "Rename" });
  if (!to || to === name) return;
  const result = await command("class", { rename: name, to });
  if (result.ok) toast(`${name} is now ${to}`);
}

async function removeClass(name) {
  const n = (page.status && page.status.samples[name]) || 0;
  const sure = await ask(`Remove the class "${name}" and its ${n} sample(s)?`, { ok: "Remove", danger: true });
  if (!sure) return;
  const result = await command("class", { remove: name });
  if (result.ok) toast(`class ${name} removed`);
}

async function resetAll() {
  const sure = await ask("Forget every sample and what the board learned?", { ok: "Forget all", danger: true });
  if (!sure) return;
  const result = await command("reset", { all: true });
  if (result.ok) toast(`${result.removed} sample(s) forgotten`);
}

function renderStatus() {
  const s = page.status;
  const h = page.health;
  const rows = [];
  if (s) {
    const camera = s.camera.ok ? el("span", { class: "ok", textContent: `${s.camera.source}: ok` })
      : s.camera.starting ? el("span", { textContent: `${s.camera.source}: starting` })
      : el("span", { class: "bad", textContent: `${s.camera.source}: ${s.camera.error || "down"}` });
    rows.push(["Camera", camera]);
  }
  if (h) {
    rows.push(["Broker", h.broker ? el("span", { class: "ok", textContent: "connected" })
      : el("span", { class: "bad", textContent: "not connected" })]);
    rows.push(["Frame rate", `${h.fps.toFixed(1)} fps`]);
  }
  if (s) {
    const total = Object.values(s.samples).reduce((a, b) => a + b, 0);
    rows.push(["Samples", String(total)]);
  }
  if (h && h.disk) {
    rows.push(["Disk", `${bytes(h.disk.used)} used` + (h.disk.free !== null ? `, ${bytes(h.disk.free)} free` : "")]);
  }
  if (s) {
    rows.push(["Bundle", s.bundle]);
    rows.push(["Version", s.version]);
  }
  $("status").replaceChildren(...rows.flatMap(([key, value]) => [el("dt", { textContent: key }), el("dd", {}, value)]));
  $("warnings").replaceChildren(...(s ? s.warnings : []).map((w) => el("li", { textContent: w })));
}

// --- gallery --------------------------------------------------------------------------------

function renderGalleryClasses() {
  const select = $("gallery-class");
  const names = classes();
  if (select.dataset.names !== names.join("\n")) {
    select.replaceChildren(...names.map((name) => el("option", { value: name, textContent: name })));
    select.dataset.names = names.join("\n");
    if (!names.includes(page.galleryClass)) page.galleryClass = names[0] || null;
    select.value = page.galleryClass || "";
    loadGallery();
  }
}

let galleryRequest = 0;
async function loadGallery(more = false) {
  const box = $("gallery");
  if (!page.commands.has("samples")) {
    box.replaceChildren(el("p", { class: "muted", textContent: "This board's daemon cannot list its samples (no samples command)." }));
    return;
  }
  const name = page.galleryClass;
  if (!name) { box.replaceChildren(); $("gallery-count").textContent = ""; return; }
  const offset = more ? page.galleryOffset : 0;
  const request = ++galleryRequest;
  const result = await command("samples", { class: name, offset, limit: GALLERY_PAGE }, { quiet: true });
  if (request !== galleryRequest) return; // a newer request replaced this one
  if (!result.ok) {
    box.replaceChildren(el("p", { class: "error", textContent: result.error }));
    return;
  }
  const tiles = result.samples.map(tile);
  if (more) box.append(...tiles); else box.replaceChildren(...tiles);
  page.galleryOffset = offset + result.samples.length;
  page.galleryTotal = result.total;
  $("gallery-count").textContent = `${result.total} sample${result.total === 1 ? "" : "s"}`;
  $("gallery-more").hidden = page.galleryOffset >= result.total;
  if (!result.total) box.replaceChildren(el("p", { class: "muted", textContent: `No samples of ${name} yet.` }));
}

// Where a sample came from: "web", "button", ..., or "fleet: kitchen" for another board's.
function from(sample) {
  return sample.source === "fleet" && sample.origin ? `fleet: ${sample.origin}` : sample.source;
}

function tile(sample) {
  const relabel = el("select", { "aria-label": "move to class", onchange: (e) => relabelSample(sample, e.target.value) },
    ...classes().map((name) => el("option", { value: name, textContent: name, selected: name === sample.class })));
  return el("div", { class: "tile", dataset: { id: String(sample.id) } },
    sample.image ? el("img", { src: `/api/thumbnail/${sample.id}`, alt: `sample ${sample.id}`, loading: "lazy" })
      : el("div", { class: "meta", textContent: "(no image kept)" }),
    el("button", { class: "delete", type: "button", title: "delete this sample", "aria-label": "delete", textContent: "×",
      onclick: () => deleteSample(sample) }),
    el("div", { class: "meta", textContent: `#${sample.id} · ${from(sample)} · ${when(sample.ts)}` }),
    page.commands.has("relabel") ? relabel : null);
}

async function deleteSample(sample) {
  const result = await command("sample_delete", { id: sample.id });
  if (result.ok) {
    toast(`sample ${sample.id} deleted`);
    loadGallery();
  }
}

async function relabelSample(sample, to) {
  if (to === sample.class) return;
  const result = await command("relabel", { id: sample.id, class: to });
  if (result.ok) toast(`sample ${sample.id} moved to ${to}`);
  loadGallery();
}

// --- live data ------------------------------------------------------------------------------

// Renders at most once per displayed frame, however fast events come.
const dirty = new Set();
function later(render) {
  if (!dirty.size) {
    requestAnimationFrame(() => {
      const renders = [...dirty];
      dirty.clear();
      for (const fn of renders) fn();
    });
  }
  dirty.add(render);
}

let galleryTimer = null;
function galleryChanged() {
  clearTimeout(galleryTimer);
  galleryTimer = setTimeout(() => loadGallery(), 400);
}

function onStatus(status) {
  const before = page.status;
  page.status = status;
  renderTeach();
  renderScores();
  renderTraining();
  renderClasses();
  renderStatus();
  renderGalleryClasses();
  const name = page.galleryClass;
  if (before && name && before.samples[name] !== status.samples[name]) galleryChanged();
}

function connect() {
  const source = new EventSource("/api/events");
  const on = (name, handler) => source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  on("status", onStatus);
  on("prediction", (p) => { page.prediction = p; later(renderScores); });
  on("losses", (losses) => { page.losses = losses; later(renderTraining); });
  on("loss", (losses) => { // the epochs since the last push
    for (const loss of losses) {
      const last = page.losses[page.losses.length - 1];
      if (last && loss.epoch < last.epoch) page.losses = []; // the parameters were reset
      page.losses.push(loss);
    }
    if (page.losses.length > 500) page.losses.splice(0, page.losses.length - 500);
    later(renderTraining);
  });
  on("sample", (s) => { if (s.source !== "web") toast(`${s.class}: ${s.count} samples (from ${s.source})`); });
  on("metrics", (m) => { page.metrics = m; renderMetrics(); });
  on("health", (h) => { page.health = h; later(renderStatus); });
  source.onopen = () => $("live-dot").classList.add("on");
  source.onerror = async () => {
    $("live-dot").classList.remove("on");
    const response = await fetch("/api/session").catch(() => null);
    if (response && response.status === 401) loggedOut();
  };
}

async function start() {
  const response = await fetch("/api/session", { cache: "no-store" });
  if (response.status === 401) { loggedOut(); return; }
  const session = await response.json();
  page.csrf = session.csrf;
  page.commands = new Set(session.commands);
  $("logout").hidden = !session.login;
  $("train").addEventListener("click", async () => {
    const training = page.status && page.status.state === "training";
    await command("train", { action: training ? "stop" : "start" });
  });
  $("evaluate").addEventListener("click", async () => {
    const result = await command("evaluate", {});
    if (result.ok) { page.metrics = result; renderMetrics(); toast(`accuracy ${percent(result.accuracy)}`); }
  });
  $("gallery-class").addEventListener("change", (e) => { page.galleryClass = e.target.value; loadGallery(); });
  $("gallery-more").addEventListener("click", () => loadGallery(true));
  $("add-class").addEventListener("submit", addClass);
  $("reset-all").addEventListener("click", resetAll);
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": page.csrf } });
    loggedOut();
  });
  window.addEventListener("resize", drawChart);
  renderMetrics();
  drawChart();
  connect();
  frameLoop();
}

start();
