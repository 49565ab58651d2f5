// The Metrics card: how right the board is on samples it did not learn from (`evaluate`, or
// the estimate after training), what it confused, and whether that is out of date. Metrics that
// say nothing, or no longer fit the samples, are never shown as if they did.

import { $, el, fill, known, listing, percent, plural, toast, when } from "./util.js";
import { classes, command, page, samplesOf, totalSamples } from "./board.js";

// Metrics that say nothing: none yet, or the empty ones sent after every sample was forgotten.
function noMetrics(m) {
  return !m || !totalSamples() || (!known(m.accuracy) && !m.samples && !Object.keys(m.confusion || {}).length
    && !/not enough/.test(m.method || ""));
}

// Why there is no accuracy, from the samples the board has now.
function tooFewText() {
  const short = classes().filter((name) => samplesOf(name) === 1);
  const taught = classes().filter((name) => samplesOf(name) > 0);
  if (taught.length < 2) return "Not enough samples to check yet: teach at least 2 classes, with 2 samples or more each.";
  if (short.length) return `Not enough samples to check yet: ${listing(short)} ${short.length === 1 ? "needs" : "need"} at least 2 samples.`;
  // The estimate said "too few" of samples that have grown since.
  return "There are enough samples now: train, or press Check now.";
}

// Rows: what each held-out sample was; columns: what the board said (the classes, then unknown).
function confusionTable(m) {
  const order = classes();
  const rows = order.filter((name) => m.confusion[name]);
  if (!rows.length) return [];
  const said = new Set(rows.flatMap((t) => Object.keys(m.confusion[t])));
  const columns = [...order.filter((name) => rows.includes(name) || said.has(name)),
    ...[...said].filter((name) => !order.includes(name))]; // the unknown label last
  const table = el("div", { class: "scroll", tabIndex: 0, role: "region", "aria-label": "which class the board said for each sample" },
    el("table", {},
      el("tr", {}, el("td", {}), ...columns.map((p) => el("th", { scope: "col", textContent: p }))),
      ...rows.map((t) => el("tr", {}, el("th", { scope: "row", textContent: t }),
        ...columns.map((p) => el("td", { class: p === t ? "hit" : "", textContent: String(m.confusion[t][p] || 0) }))))));
  return [el("p", { class: "hint", textContent: "Rows: what each sample was. Columns: what the board said." }), table];
}

// The classes found least often (recall under 100%), worst first; a few are enough to say
// where more samples would help, the table has the rest.
function foundLeast(m) {
  const missed = Object.entries(m.recall || {})
    .filter(([name, r]) => classes().includes(name) && known(r) && r < 1)
    .sort((a, b) => a[1] - b[1]).slice(0, 4);
  if (!Object.keys(m.recall || {}).length) return null;
  if (!missed.length) return "Every class was found every time.";
  return `Found least often: ${missed.map(([name, r]) => `${name} ${percent(r)}`).join(" · ")}`;
}

export function renderMetrics() {
  const box = $("metrics");
  const m = page.metrics;
  $("evaluate").hidden = !page.commands.has("evaluate");
  box.classList.remove("stale");
  if (noMetrics(m)) {
    box.replaceChildren(el("p", { class: "muted", textContent: "No estimate yet: it is made after training." }));
    return;
  }
  if (!known(m.accuracy)) {
    box.replaceChildren(el("p", { class: "muted", textContent: tooFewText() }));
    return;
  }
  box.classList.toggle("stale", Boolean(m.stale));
  const found = foundLeast(m);
  fill(box,
    m.stale ? el("p", { class: "flag", id: "metrics-stale", textContent: "Out of date: the samples changed since. Train again, or press Check now." }) : null,
    el("p", {}, el("span", { class: "big", id: "accuracy", textContent: percent(m.accuracy) }), " right"),
    el("p", { class: "muted", textContent: `Checked on ${plural(m.samples, "sample")}, each by a model that had not learnt from it, ${when(m.ts)}.` }),
    found ? el("p", { textContent: found }) : null,
    known(m.unknown_rate) ? el("p", { class: "muted", textContent: `Taught samples called unknown: ${percent(m.unknown_rate)}` }) : null,
    ...confusionTable(m));
}

async function evaluate() {
  const result = await command("evaluate", {});
  if (!result.ok) return;
  page.metrics = result;
  renderMetrics();
  toast(known(result.accuracy) ? `${percent(result.accuracy)} right` : tooFewText());
}

export function initMetrics() {
  $("evaluate").addEventListener("click", evaluate);
}
