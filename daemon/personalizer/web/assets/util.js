// Small helpers of the page: building elements, the toast, the question dialog, and the few ways
// numbers and times are written. Nothing here knows about the board.

export const $ = (id) => document.getElementById(id);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// An element with properties and children; null and undefined children are left out, so a
// missing value never shows up as the text "null".
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.includes("-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// Replaces the children of `box`; as in el(), missing ones are left out (replaceChildren itself
// would write null as the text "null").
export function fill(box, ...children) {
  box.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

export const known = (value) => value !== null && value !== undefined;

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

export function percent(value) {
  return known(value) && Number.isFinite(value) ? `${Math.round(value * 100)}%` : "–";
}

// A loss as the chart reads it: four decimals, or a power of ten once it is below 0.001
// (so a loss that keeps falling never shows as 0.0000).
export function lossText(value) {
  if (!known(value) || !Number.isFinite(value)) return "–";
  return value >= 0.001 || value === 0 ? value.toFixed(4) : value.toExponential(1);
}

export function bytes(n) {
  if (!known(n)) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function when(ts) {
  if (!known(ts)) return "";
  const seconds = Date.now() / 1000 - ts;
  if (seconds < 90) return "just now";
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ts * 1000).toLocaleDateString();
}

// "a, b and c"
export function listing(names) {
  if (names.length < 2) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// --- the toast: one short message at the bottom, optionally with one action (Undo) -------------

let toastTimer = null;
let toastAction = null;

export function toast(text, { error = false, action = null, seconds = null } = {}) {
  const box = $("toast");
  $("toast-text").textContent = text;
  const button = $("toast-action");
  toastAction = action;
  button.hidden = !action;
  if (action) button.textContent = action.label;
  box.classList.toggle("error", error);
  box.classList.toggle("actionable", Boolean(action));
  box.classList.add("show");
  clearTimeout(toastTimer);
  const shown = 1000 * (seconds || (error || action ? 5 : 2.5));
  toastTimer = setTimeout(hideToast, shown);
}

export function hideToast() {
  clearTimeout(toastTimer);
  toastAction = null;
  $("toast").classList.remove("show", "actionable");
}

export function initToast() {
  $("toast-action").addEventListener("click", () => {
    const action = toastAction;
    hideToast();
    if (action) action.run();
  });
}

// --- a small modal: a question, optionally with a text field; resolves to the text, true, or
// null (cancelled) ------------------------------------------------------------------------------

export function ask(text, { input = null, ok = "OK", danger = false } = {}) {
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
