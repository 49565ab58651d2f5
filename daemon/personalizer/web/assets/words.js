// What the page says, in a maker's words. The daemon's refusals are written for every client
// (MQTT, the CLI, the page), so some name commands ("cmd/samples lists them"), payload fields or
// converter flags; the page says what to do on the page instead. Texts that are plain already
// are shown as they come.

import { plural } from "./util.js";

// Where a sample came from: as a label (the gallery) and inside a sentence (a toast).
export const SOURCE_LABEL = { button: "button", mqtt: "MQTT", web: "this page", review: "review", fleet: "fleet" };
export const SOURCE_FROM = { button: "a button", mqtt: "MQTT", review: "Review", fleet: "another board" };

const HINT_SECONDS = 6; // a near-duplicate hint is to be read, not glanced at

// The toast after a sample was taken, as toast()'s arguments: "<lead>: 3 samples (from MQTT)."
// and the near-duplicate hint, if any, shown long enough to read.
export function sampleNews(lead, count, hint, from = null) {
  const text = `${lead}: ${plural(count, "sample")}${from ? ` (from ${from})` : ""}.`
    + (hint ? ` ${sentence(hint)}` : "");
  return [text, { seconds: hint ? HINT_SECONDS : null }];
}

// [pattern of the daemon's text, the page's words (a string, or a function of the match)]
const REWORDED = [
  [/this model has room for (\d+) classes/,
    (m) => `This model has room for ${m[1]} classes: remove one first.`],
  [/there is no sample \d+/, () => "That sample is gone already."],
  [/there is no kept frame \d+/, () => "That picture was dealt with already."],
  [/^no camera frame yet/, () => "There is no camera picture yet: check the camera, then try again."],
  [/^the newest camera frame is ([\d.]+) s old/,
    (m) => `The camera's newest picture is ${m[1]} s old: check the camera, then try again.`],
  [/^unknown class "(.*)"; the classes are/, (m) => `There is no class "${m[1]}" any more.`],
  [/^class name '?(.*?)'? is not a usable class name/,
    () => "A class name cannot be empty or start or end with a space."],
  [/^class name .* is longer than (\d+) characters/,
    (m) => `A class name can have at most ${m[1]} characters.`],
  [/^class "(.*)" exists already/, (m) => `There is a class "${m[1]}" already.`],
  [/took longer than [\d.]+ s$/, () => "The board took too long to answer: try again."],
  [/the state could not be (written|saved)/,
    () => "Nothing was changed: the board could not write to its storage (is it full?)."],
  [/^imprinting needs at least one sample/, () => "Take a sample first."],
  [/^(not logged in|missing or wrong CSRF token)/,
    () => "The session ended: reload the page and log in again."],
];

export function plainError(text) {
  const message = String(text || "The board refused that.");
  for (const [pattern, words] of REWORDED) {
    const match = message.match(pattern);
    if (match) return words(match);
  }
  // What is left: the daemon's own sentence, without a developer's pointer after a ";".
  return sentence(message.replace(/;?\s*(cmd\/\w+|send the image)[^;]*$/, ""));
}

// The status's warnings are shown in the Status card; the one about training again is shown
// as "retrain needed" next to the Train button instead.
export function plainWarning(text) {
  if (/samples changed since the head was trained/.test(text)) return null;
  if (/^state\.store_images is false/.test(text)) {
    return "This board keeps no pictures of its samples (store_images is off): after a new "
      + "model file they must be taken again.";
  }
  return text;
}

// Why a picture was kept for review (the review item's `reason`).
export function reviewReason(item) {
  const top = Object.keys(item.scores || {});
  if (item.reason === "unknown") return "The board did not know it.";
  if (item.reason === "close call" && top.length >= 2) {
    return `A close call between ${top[0]} and ${top[1]}.`;
  }
  if (item.reason === "unlike its samples" && item.class) {
    return `Called ${item.class}, but unlike every ${item.class} sample (new light or angle?).`;
  }
  return item.reason ? `Kept because: ${item.reason}.` : "Kept for review.";
}

export function sentence(text) {
  const words = String(text || "").trim();
  if (!words) return "";
  const capital = words.charAt(0).toUpperCase() + words.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

// How the last training cycle ended (the status's `last_cycle`, whose text the daemon writes:
// "training finished: the loss stopped improving (23 epochs, loss 0.0123)"), and when.
export function cycleSentence(cycle, ago) {
  return sentence(ago ? `${cycle.text}, ${ago}` : cycle.text);
}
