// The Samples card: the samples of one class as thumbnails, each with delete and "move to".
// A delete waits UNDO_SECONDS before it is sent, so a slip of the thumb can be undone (the
// toast's Undo); closing the page sends the waiting deletes at once.

import { $, el, plural, toast, when } from "./util.js";
import { classes, command, page } from "./board.js";
import { SOURCE_LABEL } from "./words.js";

const PAGE_SIZE = 48;
const UNDO_SECONDS = 5;

const gallery = { name: null, offset: 0, total: 0, request: 0, timer: null };
const waiting = new Map(); // sample id -> timer of its delete, not sent yet

// Where a sample came from, in words; another board's says which board ("fleet: kitchen").
function from(sample) {
  const source = SOURCE_LABEL[sample.source] || sample.source;
  return sample.source === "fleet" && sample.origin ? `${source}: ${sample.origin}` : source;
}

function tile(sample) {
  const id = sample.id;
  const move = el("select", { "aria-label": `move sample ${id} to another class`,
    onchange: (e) => relabel(sample, e.target.value) },
  ...classes().map((name) => el("option", { value: name, textContent: name, selected: name === sample.class })));
  return el("div", { class: "tile", dataset: { id: String(id) }, hidden: waiting.has(id) },
    sample.image ? el("img", { src: `/api/thumbnail/${id}`, alt: `sample ${id} of ${sample.class}`, loading: "lazy" })
      : el("div", { class: "no-image", textContent: "no picture kept" }),
    el("button", { class: "delete", type: "button", "aria-label": `delete sample ${id}`, textContent: "×",
      onclick: () => remove(sample) }),
    el("div", { class: "meta" },
      el("span", { textContent: `#${id} · ${from(sample)}` }),
      el("span", { textContent: when(sample.ts) })),
    page.commands.has("relabel") ? move : null);
}

function countText() {
  const shown = gallery.total - waiting.size;
  return plural(Math.max(shown, 0), "sample");
}

export async function loadGallery(more = false) {
  const box = $("gallery");
  const name = gallery.name;
  if (!page.commands.has("samples") || !name) {
    box.replaceChildren();
    $("gallery-count").textContent = "";
    $("gallery-more").hidden = true;
    return;
  }
  const offset = more ? gallery.offset : 0;
  const request = ++gallery.request;
  const result = await command("samples", { class: name, offset, limit: PAGE_SIZE }, { quiet: true });
  if (request !== gallery.request) return; // a newer request replaced this one
  if (!result.ok) {
    box.replaceChildren(el("p", { class: "error", textContent: result.error }));
    return;
  }
  const tiles = result.samples.map(tile);
  if (more) box.append(...tiles); else box.replaceChildren(...tiles);
  gallery.offset = offset + result.samples.length;
  gallery.total = result.total;
  $("gallery-count").textContent = countText();
  $("gallery-more").hidden = gallery.offset >= result.total;
  if (!result.total) box.replaceChildren(el("p", { class: "muted", textContent: `No samples of ${name} yet.` }));
}

function tileOf(id) {
  return document.querySelector(`#gallery .tile[data-id="${id}"]`);
}

// Hides the tile now and sends the delete later, unless undone meanwhile.
function remove(sample) {
  const id = sample.id;
  const timer = setTimeout(() => send(id), UNDO_SECONDS * 1000);
  waiting.set(id, timer);
  const shown = tileOf(id);
  if (shown) shown.hidden = true;
  $("gallery-count").textContent = countText();
  toast(`Sample #${id} of ${sample.class} deleted.`, {
    action: { label: "Undo", run: () => undo(id) }, seconds: UNDO_SECONDS,
  });
}

function undo(id) {
  clearTimeout(waiting.get(id));
  waiting.delete(id);
  const shown = tileOf(id);
  if (shown) shown.hidden = false;
  $("gallery-count").textContent = countText();
  toast(`Sample #${id} kept.`);
}

async function send(id, keepalive = false) {
  waiting.delete(id);
  const result = await command("sample_delete", { id }, { keepalive, quiet: keepalive });
  if (!result.ok && !keepalive) loadGallery(); // it is back (or gone for another reason)
}

async function relabel(sample, to) {
  if (to === sample.class) return;
  const result = await command("relabel", { id: sample.id, class: to });
  if (result.ok) toast(`Sample #${sample.id} moved to ${to}.`);
  loadGallery();
}

// The class list changed: a new choice of classes; the shown one stays if it still exists.
function renderChoice() {
  const select = $("gallery-class");
  const names = classes();
  if (select.dataset.names === names.join("\n")) return false;
  select.replaceChildren(...names.map((name) => el("option", { value: name, textContent: name })));
  select.dataset.names = names.join("\n");
  if (!names.includes(gallery.name)) gallery.name = names[0] || null;
  select.value = gallery.name || "";
  return true;
}

// A new status: reload when the classes changed or the shown class's samples did.
export function galleryOnStatus(before, status) {
  if (renderChoice()) { loadGallery(); return; }
  const name = gallery.name;
  if (before && name && before.samples[name] !== status.samples[name]) {
    clearTimeout(gallery.timer);
    gallery.timer = setTimeout(() => loadGallery(), 400); // samples often come in bursts
  }
}

export function initGallery() {
  $("gallery-class").addEventListener("change", (e) => { gallery.name = e.target.value; loadGallery(); });
  $("gallery-more").addEventListener("click", () => loadGallery(true));
  // Leaving the page is not an undo: the deletes the maker asked for are sent now.
  window.addEventListener("pagehide", () => {
    for (const [id, timer] of waiting) { clearTimeout(timer); send(id, true); }
  });
}
