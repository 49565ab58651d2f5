"""The README's pictures of the page, made from the real daemon and page: a phone (390 px) and a
desktop, with four taught classes, their scores on the live view and their samples.

Every run makes them (build/test-artifacts/web/page-phone.png and page.png) and checks they stay
small enough for a README (palette PNGs under :data:`MAX_BYTES`); with
``UPDATE_DOCS_SCREENSHOTS=1`` they are also written to docs/ (committed). They are not written
there on every run: each run's pictures differ a little (times, scores), and a test run should
not leave the repository changed.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from PIL import Image

from tests.support import photos
from tests.support.mqtt_watch import b64
from tests.web.conftest import ARTIFACTS, DESKTOP, PHONE, REPO, log_in

DOCS = REPO / "docs"
MAX_BYTES = 150_000
CLASSES = ["cat", "coffee", "rocket", "astronaut"]

# The live view shows the cat as cat, and every score bar has finished moving to its value.
_SETTLED = """() => {
  if (document.querySelector('#now-class').textContent !== 'cat') return false;
  const rows = [...document.querySelectorAll('.score')];
  return rows.length > 0 && rows.every((row) => {
    const fill = row.querySelector('.fill').getBoundingClientRect().width;
    const track = row.querySelector('.track').getBoundingClientRect().width;
    const value = parseFloat(row.querySelector('.value').textContent) / 100;
    return Math.abs(fill / track - value) < 0.02;
  });
}"""


def small_png(png: bytes, target: Path, width: int) -> int:
    """``png`` scaled to ``width`` and stored with a 256-colour palette; its size in bytes."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width != width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    palette = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    target.parent.mkdir(parents=True, exist_ok=True)
    palette.save(target, optimize=True)
    return target.stat().st_size


def keep(name: str, png: bytes, width: int) -> int:
    """Store the picture among the test artifacts (and in docs/ when asked); its size."""
    size = small_png(png, ARTIFACTS / name, width)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(ARTIFACTS / name, DOCS / name)
    return size


def test_the_readme_pictures_of_the_page(start_web_daemon, pretrained_bundle, tmp_path, new_page):
    still = photos.replay_folder(tmp_path / "still", ["cat"])  # the cat in front of the camera
    web = start_web_daemon(
        bundle_dir=pretrained_bundle,
        frames=still,
        overrides={"model": {"classes": CLASSES}, "camera": {"fps": 5.0}},
    )
    watch = web.daemon.watch
    for name in CLASSES:
        for index in range(5):
            image = b64(photos.encode(photos.variant(name, index)))
            assert watch.command("sample", {"class": name, "image": image})["ok"]
    assert watch.command("train", {"action": "start"})["ok"]
    web.daemon.status(predicate=lambda s: s["last_cycle"] and s["state"] == "idle", timeout=60)

    page = new_page(PHONE)
    log_in(page, web)
    page.wait_for_function(_SETTLED)
    size = keep("page-phone.png", page.screenshot(), 390)
    assert size < MAX_BYTES, size

    page = new_page(DESKTOP)
    log_in(page, web)
    page.wait_for_selector("#accuracy")
    page.wait_for_function(_SETTLED)
    size = keep("page.png", page.screenshot(), 1024)
    assert size < MAX_BYTES, size
