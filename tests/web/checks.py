"""What must hold for the page on a phone after every action: it fits the screen's width (wide
things scroll inside their card), every touch target is at least 44 px each way, and no
missing value is ever shown as ``null``, ``undefined`` or ``NaN``."""

from __future__ import annotations

from typing import Any

TOUCH = 44  # px: the smallest target a finger hits reliably (the page's own rule)

# Elements reaching past the screen's right edge, outside a scrolling box; and the page's width.
_OVERFLOW = """(width) => {
  const sticking = [...document.querySelectorAll('body *')].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > width + 0.5 && !e.parentElement.closest('.scroll')
      && getComputedStyle(e).position !== 'fixed';
  });
  return {
    scroll: document.documentElement.scrollWidth,
    sticking: sticking.slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`
      + ` right=${Math.round(e.getBoundingClientRect().right)}`),
  };
}"""

# Every visible control smaller than a finger, with its size.
_SMALL = """(touch) => [...document.querySelectorAll(
    'button, select, input, a[href], [role=button], summary')]
  .filter((e) => e.offsetParent !== null && getComputedStyle(e).visibility !== 'hidden')
  .map((e) => [e, e.getBoundingClientRect()])
  .filter(([e, r]) => r.width < touch - 0.5 || r.height < touch - 0.5)
  .map(([e, r]) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`
    + ` "${(e.getAttribute('aria-label') || e.textContent).trim().slice(0, 30)}"`
    + ` ${Math.round(r.width)}x${Math.round(r.height)}`)"""

# Visible text and the texts a screen reader reads that say null, undefined or NaN.
_NULLS = """() => {
  // "nullnull" counts too (two missing values side by side): a side that is not a letter
  const bad = /(^|[^a-z])(null|undefined)|(null|undefined)($|[^a-z])|\\bNaN\\b/i;
  const found = [];
  if (bad.test(document.body.innerText)) {
    found.push(...document.body.innerText.split(/\\n/).filter((line) => bad.test(line)));
  }
  for (const e of document.querySelectorAll('[aria-label], [title], [alt]')) {
    for (const name of ['aria-label', 'title', 'alt']) {
      const value = e.getAttribute(name);
      if (value && bad.test(value)) found.push(`${name}="${value}"`);
    }
  }
  return found;
}"""


def overflow(page: Any) -> dict[str, Any]:
    """The page's scroll width and what sticks out past the screen's width."""
    width = page.viewport_size["width"]
    return page.evaluate(_OVERFLOW, width)


def assert_fits(page: Any, when: str) -> None:
    """Nothing scrolls sideways: compared with the device's width (on a mobile viewport an
    overflowing page widens the layout viewport, so innerWidth would grow with it)."""
    width = page.viewport_size["width"]
    found = overflow(page)
    assert found["scroll"] <= width and not found["sticking"], (when, width, found)


def assert_touch_targets(page: Any, when: str) -> None:
    """Every visible control is at least 44 x 44 px."""
    small = page.evaluate(_SMALL, TOUCH)
    assert small == [], (when, small)


def assert_no_null_text(page: Any, when: str) -> None:
    """No text (shown, or read by a screen reader) says null, undefined or NaN."""
    found = page.evaluate(_NULLS)
    assert found == [], (when, found)


def check_page(page: Any, when: str) -> None:
    """All of the above, after the action ``when``."""
    assert_fits(page, when)
    assert_touch_targets(page, when)
    assert_no_null_text(page, when)
