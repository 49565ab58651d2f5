"""The page's server inside the daemon: what it costs, how it stops, what a taken port does."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zipfile
from pathlib import Path

from tests.web.conftest import PASSWORD, REPO, free_port, tap, wait_for_frame


def _encoded(client) -> int:
    return client.get("/api/health").json()["stream"]["encoded"]


def test_frames_are_encoded_only_while_someone_watches(web_daemon, new_page):
    client = web_daemon.logged_in()
    time.sleep(1.5)  # the camera runs at 10 fps meanwhile
    assert _encoded(client) == 0
    page = new_page()
    page.goto(web_daemon.base + "/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#live[data-frame]")
    first = int(page.get_attribute("#live", "data-frame"))
    page.wait_for_function(
        "n => Number(document.querySelector('#live').dataset.frame) >= n + 5", arg=first
    )
    assert _encoded(client) >= 5
    assert client.get("/api/health").json()["stream"]["pages"] == 1
    page.close()
    time.sleep(0.5)  # a frame request under way when the page closed may still finish
    closed = _encoded(client)
    time.sleep(2.0)
    assert _encoded(client) == closed  # nobody watches: nothing is encoded


def test_a_stop_with_open_pages_is_clean_and_quick(web_daemon, new_page):
    page = new_page()
    page.goto(web_daemon.base + "/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#live-dot.on")  # the event stream is open
    code, seconds = web_daemon.daemon.process.terminate()
    assert code == 0, web_daemon.log()[-3000:]
    assert seconds < 5
    assert "did not stop in time" not in web_daemon.log()


def test_a_taken_port_is_a_warning_and_the_daemon_runs_on(start_web_daemon):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        web = start_web_daemon(web={"listen": f"127.0.0.1:{port}"}, wait=False)
        status = web.daemon.status(predicate=lambda s: any("web:" in w for w in s["warnings"]))
    warning = next(w for w in status["warnings"] if "web:" in w)
    assert f"cannot listen on 127.0.0.1:{port}" in warning and "[web] listen" in warning
    result = web.daemon.watch.command("save", {})
    assert result["ok"]


def test_a_slow_page_does_not_hold_the_daemon_up(web_daemon):
    """A page that opens the event stream and never reads it: the daemon goes on."""
    client = web_daemon.logged_in()
    cookie = next(c for c in client.cookies if c.name == "personalizer_session")
    port = urllib.parse.urlsplit(web_daemon.base).port
    stuck = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    stuck.request("GET", "/api/events", headers={"Cookie": f"{cookie.name}={cookie.value}"})
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    try:
        wait_for_frame(client)
        watch = web_daemon.daemon.watch
        mark = watch.mark()
        for _ in range(5):
            assert client.command("sample", {"class": "rocket"}).json()["ok"]
        events = watch.wait_for("sample", lambda m: m.json()["count"] == 5, 20, mark)
        assert events.json()["source"] == "web"
        assert client.get("/api/health").status == 200
    finally:
        stuck.close()


def test_many_pages_at_once_are_served(web_daemon):
    client = web_daemon.logged_in()
    wait_for_frame(client)
    failures: list[str] = []

    def viewer() -> None:
        for _ in range(10):
            answer = client.get("/api/frame?after=0")
            if answer.status != 200 or answer.headers["Content-Type"] != "image/jpeg":
                failures.append(f"{answer.status} {answer.headers['Content-Type']}")

    threads = [threading.Thread(target=viewer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []


def test_the_package_ships_the_page(tmp_path):
    source = tmp_path / "daemon"  # a copy: building writes build/ and egg-info next to it
    shutil.copytree(REPO / "daemon", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
         str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(Path(tmp_path).glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = REPO / "daemon" / "personalizer" / "web" / "assets"
    for asset in sorted(path.name for path in assets.iterdir()):  # the page's modules too
        assert f"personalizer/web/assets/{asset}" in names
    metadata = next(n for n in names if n.endswith("METADATA"))
    assert "Requires-Dist: aiohttp" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_the_page_needs_nothing_from_elsewhere():
    assets = REPO / "daemon" / "personalizer" / "web" / "assets"
    for path in assets.iterdir():
        text = path.read_text()
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text and "//cdn" not in text, path.name


def test_without_a_password_the_page_opens_on_the_board_without_login(start_web_daemon, new_page):
    port = free_port()
    web = start_web_daemon(password=None, web={"listen": f"127.0.0.1:{port}"})
    page = new_page()
    page.goto(web.base + "/")
    page.wait_for_selector("#live[data-frame]")
    assert page.url == web.base + "/"
    assert page.locator("#logout").is_hidden()
    tap(page, "astronaut", 1)
