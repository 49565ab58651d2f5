// The board's page: live view, scores, teaching, training, review, metrics, samples, classes,
// status. Plain JavaScript modules served by the board itself (no framework, no build step,
// nothing from a CDN). Live data comes from /api/events (server-sent events); every change is
// a command sent through board.js, exactly like MQTT's cmd/<name>. The other modules each own
// one card: gallery.js (Samples), review.js (Review), metrics.js (Metrics), region.js (the
// region over the live view), chart.js (the loss chart); words.js says things in a maker's words.

import {
  $, ask, bytes, el, initToast, known, lossText, percent, plural, sleep, toast, when,
} from "./util.js";
import { classes, command, loggedOut, page, samplesOf, totalSamples } from "./board.js";
import { drawLossChart } from "./chart.js";
import { galleryOnStatus, initGallery } from "./gallery.js";
import { fitView, initRegion, renderRegion } from "./region.js";
import { initMetrics, renderMetrics } from "./metrics.js";
import { initReview, reviewOnStatus } from "./review.js";
import { SOURCE_FROM, cycleSentence, plainWarning, sampleNews, sentence } from "./words.js";

const FRAME_PERIOD = 100; // ms: at most 10 live-view frames a second
const LOSS_HISTORY = 500; // epochs the chart keeps (as the board's feed does)

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

async function showFrame(img, response) {
  const number = Number(response.headers.get("X-Frame"));
  const url = URL.createObjectURL(await response.blob());
  const previous = img.src;
  img.src = url;
  await img.decode().catch(() => {});
  if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
  lastFrame = number;
  img.dataset.frame = String(number);
  fitView(img.naturalWidth, img.naturalHeight);
  $("no-frame").hidden = true;
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
      if (response.status === 200) await showFrame(img, response);
      else if (response.status === 204) $("no-frame").hidden = Boolean(img.dataset.frame);
    } catch (error) {
      await sleep(1000);
    }
    const rest = FRAME_PERIOD - (performance.now() - started);
    if (rest > 0) await sleep(rest);
  }
}

// --- scores ---------------------------------------------------------------------------------

function scoreRows(names) {
  const box = $("scores");
  if (box.dataset.names === names.join("\n")) return;
  box.replaceChildren(...names.map((name) => el("div", { class: "score", dataset: { class: name } },
    el("span", { class: "name", textContent: name, title: name }),
    el("span", { class: "track" }, el("span", { class: "fill" })),
    el("span", { class: "value", textContent: "–" }))));
  box.dataset.names = names.join("\n");
}

// An unknown frame greys every bar and names its closest class: a full bar next to "unknown"
// would say the opposite of the label.
function renderScores() {
  const prediction = page.prediction;
  const scores = (prediction && prediction.scores) || {};
  const isKnown = !prediction || prediction.known !== false;
  const closest = prediction && !isKnown ? prediction.closest : null;
  const top = prediction && isKnown ? prediction.class : null;
  scoreRows(classes());
  $("scores").classList.toggle("unknown", !isKnown);
  for (const row of $("scores").children) {
    const value = scores[row.dataset.class];
    row.querySelector(".fill").style.width = `${Math.round((value || 0) * 100)}%`;
    row.querySelector(".value").textContent = percent(value);
    row.classList.toggle("top", top === row.dataset.class);
    row.classList.toggle("closest", closest === row.dataset.class);
  }
  if (prediction) {
    $("now-class").textContent = prediction.class;
    $("now-conf").textContent = isKnown ? percent(prediction.confidence) : closest ? `— closest: ${closest}` : "";
    document.querySelector(".now").classList.toggle("unknown", !isKnown);
  }
  for (const button of $("teach").children) button.classList.toggle("top", top === button.dataset.class);
}

// --- teaching -------------------------------------------------------------------------------

function varietyWord(name) {
  const variety = page.status && page.status.variety && page.status.variety[name];
  return samplesOf(name) >= 2 && variety && variety.say ? variety.say : null;
}

function renderTeach() {
  const box = $("teach");
  const names = classes();
  if (!names.length) {
    box.replaceChildren(el("p", { class: "muted", textContent: "No classes yet: add one under Classes." }));
    box.dataset.names = "";
    return;
  }
  if (box.dataset.names !== names.join("\n")) {
    box.replaceChildren(...names.map((name) => el("button", {
      class: "teach-btn", type: "button", dataset: { class: name }, onclick: () => teach(name),
    }, el("span", { class: "name", textContent: name }), el("span", { class: "count" }),
    el("span", { class: "variety" }))));
    box.dataset.names = names.join("\n");
  }
  for (const button of box.children) {
    const name = button.dataset.class;
    const n = samplesOf(name);
    const variety = varietyWord(name);
    const count = plural(n, "sample");
    button.querySelector(".count").textContent = count;
    button.querySelector(".variety").textContent = variety || "";
    button.setAttribute("aria-label", `${name}, ${count}${variety ? `, ${variety}` : ""}`);
    button.dataset.count = String(n);
    button.dataset.variety = variety || "";
  }
}

function showTeachHint(text) {
  $("teach-hint").textContent = text || "";
  $("teach-hint").hidden = !text;
}

async function teach(name) {
  const button = document.querySelector(`.teach-btn[data-class="${CSS.escape(name)}"]`);
  if (button) { button.classList.remove("flash"); void button.offsetWidth; button.classList.add("flash"); }
  showTeachHint("");
  const result = await command("sample", { class: name });
  if (!result.ok) return;
  if (result.hint) showTeachHint(`${name}: ${sentence(result.hint)}`);
  toast(...sampleNews(name, result.count, result.hint));
}

// --- training -------------------------------------------------------------------------------

function trainingText(training) {
  const last = page.losses[page.losses.length - 1];
  const status = page.status;
  if (training && last && known(last.loss)) return `Training… epoch ${last.epoch}: loss ${lossText(last.loss)}`;
  if (training) return "Training…";
  if (!totalSamples()) return "No training yet: take samples first.";
  if (status && status.last_cycle && status.last_cycle.text) {
    return cycleSentence(status.last_cycle, when(status.last_cycle.ts));
  }
  if (last && known(last.loss)) return `Epoch ${last.epoch}: loss ${lossText(last.loss)}`;
  if (status && known(status.last_loss)) return `Last loss ${lossText(status.last_loss)}`;
  return "No training yet.";
}

function renderTraining() {
  const status = page.status;
  const training = Boolean(status && status.state === "training");
  const button = $("train");
  button.textContent = training ? "Stop" : "Train";
  button.classList.toggle("danger", training);
  button.classList.toggle("primary", !training);
  $("retrain").hidden = training || !(status && status.needs_training && totalSamples());
  const pill = $("state");
  pill.textContent = status ? status.state : "connecting";
  pill.classList.toggle("training", training);
  $("loss-text").textContent = trainingText(training);
  drawLossChart($("loss-chart"), page.losses);
}

// --- classes --------------------------------------------------------------------------------

function renderClasses() {
  const names = classes();
  const editable = page.commands.has("class");
  $("classes").replaceChildren(...names.map((name) => el("li", { dataset: { class: name } },
    el("span", { class: "label" }, el("span", { class: "name", textContent: name }),
      el("span", { class: "count", textContent: plural(samplesOf(name), "sample") })),
    editable ? el("button", { type: "button", textContent: "Rename", "aria-label": `Rename ${name}`, onclick: () => renameClass(name) }) : null,
    editable ? el("button", { type: "button", class: "danger", textContent: "Remove", "aria-label": `Remove ${name}`, onclick: () => removeClass(name) }) : null)));
  $("add-class").hidden = !editable;
  const capacity = page.status && page.status.capacity;
  let text = "";
  if (capacity && names.length >= capacity) text = `All ${capacity} class slots are in use: remove a class to add another.`;
  else if (capacity) text = `${names.length} of ${capacity} class slots in use`;
  $("capacity").textContent = text;
}

async function addClass(event) {
  event.preventDefault();
  const name = $("new-class").value.trim();
  if (!name) return;
  const result = await command("class", { add: name });
  if (result.ok) { $("new-class").value = ""; toast(`Class ${name} added.`); }
}

async function renameClass(name) {
  const to = await ask(`Rename the class "${name}" to:`, { input: name, ok: "Rename" });
  if (!to || to === name) return;
  const result = await command("class", { rename: name, to });
  if (result.ok) toast(`${name} is now ${to}.`);
}

async function removeClass(name) {
  const sure = await ask(`Remove the class "${name}" and its ${plural(samplesOf(name), "sample")}?`, { ok: "Remove", danger: true });
  if (!sure) return;
  const result = await command("class", { remove: name });
  if (result.ok) toast(`Class ${name} removed.`);
}

async function resetAll() {
  const sure = await ask("Forget every sample and what the board learned?", { ok: "Forget all", danger: true });
  if (!sure) return;
  const result = await command("reset", { all: true });
  if (result.ok) toast(`${plural(result.removed, "sample")} forgotten.`);
}

// --- status ---------------------------------------------------------------------------------

function cameraText(camera) {
  if (camera.ok) return el("span", { class: "ok", textContent: "working" });
  if (camera.starting) return el("span", { textContent: "starting…" });
  return el("span", { class: "bad", textContent: camera.error || "not working" });
}

// The fleet group in words: "workshop: 120 samples, 80 from 2 other boards, heard 2 min ago".
function fleetText(fleet) {
  const others = fleet.boards ? fleet.boards.length : 0;
  const group = `${fleet.group}${fleet.mode === "follow" ? " (following)" : ""}`;
  let samples = plural(fleet.samples || 0, "sample");
  if (others) samples += `, ${fleet.from_others || 0} from ${plural(others, "other board")}`;
  const heard = known(fleet.last_heard) ? `heard ${when(fleet.last_heard)}` : "no other board heard yet";
  return `${group}: ${samples}, ${heard}`;
}

function renderStatus() {
  const s = page.status;
  const h = page.health;
  const rows = [];
  if (s) rows.push(["Camera", cameraText(s.camera)]);
  if (h) {
    rows.push(["Broker", h.broker ? el("span", { class: "ok", textContent: "connected" })
      : el("span", { class: "bad", textContent: "not connected" })]);
    if (known(h.fps)) rows.push(["Frame rate", `${h.fps.toFixed(1)} a second`]);
  }
  if (s) rows.push(["Samples", String(totalSamples())]);
  if (s && s.fleet) rows.push(["Fleet", fleetText(s.fleet)]);
  if (h && h.disk && known(h.disk.used)) {
    rows.push(["Storage", `${bytes(h.disk.used)} used` + (known(h.disk.free) ? `, ${bytes(h.disk.free)} free` : "")]);
  }
  if (s && s.bundle) rows.push(["Model", s.bundle]);
  if (s && s.version) rows.push(["Version", s.version]);
  $("status").replaceChildren(...rows.flatMap(([key, value]) => [el("dt", { textContent: key }), el("dd", {}, value)]));
  const warnings = (s ? s.warnings : []).map(plainWarning).filter(Boolean);
  $("warnings").replaceChildren(...warnings.map((w) => el("li", { textContent: w })));
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

function onStatus(status) {
  const before = page.status;
  page.status = status;
  if (!totalSamples()) page.losses = []; // every sample forgotten: the old chart is of nothing
  renderTeach();
  renderScores();
  renderTraining();
  renderMetrics();
  renderClasses();
  renderStatus();
  renderRegion();
  galleryOnStatus(before, status);
  reviewOnStatus(before, status);
}

function onLosses(losses) {
  for (const loss of losses) {
    const last = page.losses[page.losses.length - 1];
    if (last && loss.epoch < last.epoch) page.losses = []; // the parameters were reset
    page.losses.push(loss);
  }
  if (page.losses.length > LOSS_HISTORY) page.losses.splice(0, page.losses.length - LOSS_HISTORY);
  later(renderTraining);
}

function onSample(event) {
  if (event.source === "web") return; // this page's own taps say so themselves
  toast(...sampleNews(event.class, event.count, event.hint, SOURCE_FROM[event.source] || event.source));
}

function connect() {
  const source = new EventSource("/api/events");
  const on = (name, handler) => source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
  on("status", onStatus);
  on("prediction", (p) => { page.prediction = p; later(renderScores); });
  on("losses", (losses) => { page.losses = totalSamples() ? losses : []; later(renderTraining); });
  on("loss", onLosses);
  on("sample", onSample);
  on("metrics", (m) => { page.metrics = m; renderMetrics(); });
  on("health", (h) => { page.health = h; later(renderStatus); });
  source.onopen = () => {
    $("live-dot").classList.add("on");
    $("live-dot").setAttribute("aria-label", "live updates: on");
  };
  source.onerror = async () => {
    $("live-dot").classList.remove("on");
    $("live-dot").setAttribute("aria-label", "live updates: off");
    const response = await fetch("/api/session").catch(() => null);
    if (response && response.status === 401) loggedOut();
  };
}

function wire() {
  $("train").addEventListener("click", async () => {
    const training = page.status && page.status.state === "training";
    await command("train", { action: training ? "stop" : "start" });
  });
  $("add-class").addEventListener("submit", addClass);
  $("reset-all").addEventListener("click", resetAll);
  $("logout").addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": page.csrf } });
    loggedOut();
  });
  window.addEventListener("resize", () => drawLossChart($("loss-chart"), page.losses));
}

async function start() {
  const response = await fetch("/api/session", { cache: "no-store" });
  if (response.status === 401) { loggedOut(); return; }
  const session = await response.json();
  page.csrf = session.csrf;
  page.commands = new Set(session.commands);
  $("logout").hidden = !session.login;
  initToast();
  initGallery();
  initReview();
  initRegion();
  initMetrics();
  wire();
  renderMetrics();
  renderTraining();
  connect();
  frameLoop();
}

start();
