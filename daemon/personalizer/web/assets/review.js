// The Review card: the pictures the board was unsure of (kept by the daemon, `review`), each
// with why it was kept, the board's top scores, when and how often it was seen. One tap makes
// one a sample of a class (`review_label`), of a new class (`class` add, then the label), or
// dismisses it. The count comes from the status (`review_pending`), so it is right even while
// the list is not loaded.

import { $, ask, el, percent, plural, toast, when } from "./util.js";
import { classes, command, page } from "./board.js";
import { reviewReason, sampleNews } from "./words.js";

const PAGE_SIZE = 20;
const review = { offset: 0, request: 0, timer: null };

// The board's top scores, leaving out those under 1% (an unknown picture often has none).
function scoresText(item) {
  const top = Object.entries(item.scores || {}).filter(([, p]) => p >= 0.01)
    .map(([name, p]) => `${name} ${percent(p)}`);
  return top.length ? `The board's scores: ${top.join(" · ")}` : null;
}

function seenText(item) {
  if (item.seen > 1) return `Seen ${item.seen} times, first ${when(item.ts)}, last ${when(item.last_seen)}`;
  return `Seen ${when(item.ts)}`;
}

// A button per class while they are few; with many, buttons for the likeliest (the item's
// scored classes) and a list for the others, so an item does not fill the screen.
const ALL_AS_BUTTONS = 6;

function choices(item) {
  const names = classes();
  const likely = Object.entries(item.scores || {})
    .filter(([name, p]) => names.includes(name) && p >= 0.01).map(([name]) => name);
  const rest = names.filter((name) => !likely.includes(name));
  if (names.length <= ALL_AS_BUTTONS) return { buttons: [...likely, ...rest], listed: [] };
  return { buttons: likely, listed: rest };
}

function otherClass(item, listed, act) {
  if (!listed.length) return null;
  return el("select", { "aria-label": `it is another class`, onchange: (e) => e.target.value && act({ class: e.target.value }) },
    el("option", { value: "", textContent: likelyCount(item) ? "Another class…" : "Which class?" }),
    ...listed.map((name) => el("option", { value: name, textContent: name })));
}

function likelyCount(item) {
  return Object.values(item.scores || {}).filter((p) => p >= 0.01).length;
}

function entry(item) {
  const row = el("li", { class: "review-item", dataset: { id: String(item.id), seen: String(item.seen) } });
  const act = (fields, what) => label(row, item, fields, what);
  const { buttons, listed } = choices(item);
  const scores = scoresText(item);
  row.append(
    item.image ? el("img", { src: `/api/review/${item.id}/image`, alt: `kept picture ${item.id}`, loading: "lazy" })
      : el("div", { class: "no-image", textContent: "no picture kept" }),
    el("div", { class: "review-info" },
      el("p", { class: "why", textContent: reviewReason(item) }),
      scores ? el("p", { class: "muted", textContent: scores }) : null,
      el("p", { class: "muted", textContent: seenText(item) })),
    el("div", { class: "review-actions", role: "group", "aria-label": `what kept picture ${item.id} shows` },
      ...buttons.map((name) => el("button", { type: "button", class: "chip", textContent: name,
        "aria-label": `it is ${name}`, onclick: () => act({ class: name }) })),
      otherClass(item, listed, act),
      page.commands.has("class") ? el("button", { type: "button", class: "chip new", textContent: "New class…",
        onclick: () => newClass(row, item) }) : null,
      el("button", { type: "button", class: "quiet", textContent: "Dismiss",
        "aria-label": `dismiss kept picture ${item.id}`, onclick: () => act({ dismiss: true }) })));
  return row;
}

function busy(row, on) {
  for (const button of row.querySelectorAll("button")) button.disabled = on;
}

async function label(row, item, fields, name = fields.class) {
  busy(row, true);
  const result = await command("review_label", { id: item.id, ...fields });
  busy(row, false);
  if (!result.ok) { loadReview(); return; }
  row.remove();
  if (fields.dismiss) toast("Dismissed.");
  else toast(...sampleNews(`Now a sample of ${name}`, result.count, result.hint));
  if (!$("review").children.length) loadReview();
}

async function newClass(row, item) {
  const name = await ask("What does it show? A new class:", { input: "", ok: "Add and label" });
  if (!name) return;
  if (!classes().includes(name)) {
    const added = await command("class", { add: name });
    if (!added.ok) return;
  }
  await label(row, item, { class: name }, name);
}

// The list again, without moving what is on screen: a picture kept meanwhile is added at the
// end, not at the top, so the row under the maker's finger stays the one they meant to tap.
// Rows that are gone are removed; rows seen again are redrawn in place.
function merge(box, items) {
  const fresh = new Map(items.map((item) => [String(item.id), item]));
  for (const row of [...box.children]) {
    const item = fresh.get(row.dataset.id);
    if (!item) row.remove();
    else if (row.dataset.seen !== String(item.seen)) row.replaceWith(entry(item));
    fresh.delete(row.dataset.id);
  }
  box.append(...[...fresh.values()].map(entry));
}

export async function loadReview(more = false) {
  if (!page.commands.has("review")) return;
  const offset = more ? review.offset : 0;
  const request = ++review.request;
  const result = await command("review", { offset, limit: PAGE_SIZE }, { quiet: true });
  if (request !== review.request) return;
  const box = $("review");
  if (!result.ok) {
    box.replaceChildren(el("li", { class: "error", textContent: result.error }));
    return;
  }
  if (more) box.append(...result.items.map(entry)); else merge(box, result.items);
  review.offset = offset + result.items.length;
  $("review-more").hidden = review.offset >= result.total;
  $("review-empty").hidden = result.total > 0;
}

function renderCount(pending) {
  $("review-count").textContent = String(pending);
  $("review-count").hidden = !pending;
  $("review-badge").textContent = String(pending);
  $("review-link").hidden = !pending;
  $("review-link").setAttribute("aria-label", `Review: ${plural(pending, "picture")} to look at`);
}

// A new status: a new count; the list is loaded again when the count or the classes changed
// (after a short pause, as kept pictures and labels come in bursts).
export function reviewOnStatus(before, status) {
  const pending = status.review_pending || 0;
  renderCount(pending);
  const changed = !before || (before.review_pending || 0) !== pending
    || before.classes.join("\n") !== status.classes.join("\n");
  if (!changed) return;
  clearTimeout(review.timer);
  review.timer = setTimeout(() => loadReview(), before ? 500 : 0);
}

export function initReview() {
  const card = $("review").closest("section");
  card.hidden = !page.commands.has("review");
  $("review-more").addEventListener("click", () => loadReview(true));
}
