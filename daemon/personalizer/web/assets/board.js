// The page's view of the board: what the event stream said last, and the one way to send a
// command (POST /api/command/<name> with the session's CSRF token, exactly like MQTT's
// cmd/<name>; the reply is the command's result).

import { toast } from "./util.js";
import { plainError } from "./words.js";

export const page = {
  csrf: null,
  commands: new Set(),
  status: null,
  prediction: null,
  losses: [],
  metrics: null,
  health: null,
};

export function classes() {
  return page.status ? page.status.classes : [];
}

export function samplesOf(name) {
  return (page.status && page.status.samples[name]) || 0;
}

export function totalSamples() {
  return page.status ? Object.values(page.status.samples).reduce((a, b) => a + b, 0) : 0;
}

export function loggedOut() {
  location.href = "/login";
}

// A refusal comes back as { ok: false, error } with the error in plain words (and shown in the
// toast unless `quiet`); `keepalive` lets a command finish while the page closes.
export async function command(name, fields = {}, { quiet = false, keepalive = false } = {}) {
  let result;
  try {
    const response = await fetch(`/api/command/${encodeURIComponent(name)}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": page.csrf },
      body: JSON.stringify(fields),
      credentials: "same-origin",
      keepalive,
    });
    if (response.status === 401) { loggedOut(); return { ok: false, error: "not logged in" }; }
    result = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  } catch (error) {
    result = { ok: false, error: "The board did not answer: is it on and on the network?" };
  }
  if (!result.ok) {
    result.error = plainError(result.error);
    if (!quiet) toast(result.error, { error: true });
  }
  return result;
}
