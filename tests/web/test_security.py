"""The page's protections, against the real daemon: what a request without a session, without
the CSRF token, from another site, or with wrong passwords gets, and that it changes nothing."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from pathlib import Path

from tests.support import photos
from tests.support.certificates import make_server_certificate
from tests.support.mqtt_watch import b64
from tests.support.waiting import wait_until
from tests.web.client import WebClient
from tests.web.conftest import PASSWORD, wait_for_frame

SAMPLE = {"class": "cat"}


def samples_now(web) -> dict[str, int]:
    """The samples per class as the daemon's newest retained status says."""
    return web.daemon.watch.received("status")[-1].json()["samples"]


def assert_nothing_changed(web) -> None:
    time.sleep(1.0)  # a command that got through would have been carried out by now
    assert web.daemon.watch.received("sample") == []
    assert set(samples_now(web).values()) == {0}
    status = web.daemon.watch.received("status")[-1].json()
    assert status["state"] == "idle"


def test_requests_without_a_session_change_nothing(web_daemon):
    client = web_daemon.client()
    for name, fields in (("sample", SAMPLE), ("train", {"action": "start"}),
                         ("reset", {"all": True}), ("save", {})):  # fmt: skip
        answer = client.command(name, fields, csrf="anything")
        assert answer.status == 401, (name, answer.status, answer.text)
        assert answer.json()["ok"] is False
    for path in ("/api/session", "/api/events", "/api/frame", "/api/health", "/api/thumbnail/1",
                 "/api/review/1/image"):  # fmt: skip
        assert client.get(path).status == 401, path
    page = client.get("/")
    assert page.status == 303 and page.headers["Location"] == "/login"
    forged = WebClient(web_daemon.base)
    answer = forged.command(
        "sample", SAMPLE, csrf="x", headers={"Cookie": "personalizer_session=forged"}
    )
    assert answer.status == 401
    assert_nothing_changed(web_daemon)


def test_requests_without_the_csrf_token_change_nothing(web_daemon):
    client = web_daemon.logged_in()
    other = web_daemon.logged_in()  # another browser's valid token is not this session's
    assert other.csrf != client.csrf
    for token in (None, "", "wrong", other.csrf, client.csrf[:-1]):
        answer = client.command("sample", SAMPLE, csrf=token)
        assert answer.status == 403, (token, answer.text)
        assert "CSRF" in answer.json()["error"]
    # A page of another site cannot post, even with the token (it could not read it anyway).
    answer = client.command("sample", SAMPLE, headers={"Origin": "http://evil.example"})
    assert answer.status == 403
    logout = client.request("POST", "/logout")  # logging out is a change too
    assert logout.status == 403
    assert_nothing_changed(web_daemon)
    # The same request with the token works: the refusals above were the checks' doing.
    wait_for_frame(client)
    answer = client.command("sample", SAMPLE)
    assert answer.status == 200 and answer.json()["ok"], answer.text
    event = web_daemon.daemon.watch.wait_for("sample", timeout=10).json()
    assert event["class"] == "cat" and event["source"] == "web"


def _login_from(web, address: str, password: str) -> int:
    """Log in from source address ``address`` (another loopback address is another client)."""
    port = urllib.parse.urlsplit(web.base).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                            source_address=(address, 0))  # fmt: skip
    try:
        connection.request(
            "POST",
            "/login",
            urllib.parse.urlencode({"password": password}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        return connection.getresponse().status
    finally:
        connection.close()


def test_wrong_passwords_are_rate_limited_per_client_with_backoff(web_daemon):
    client = web_daemon.client()
    for _ in range(3):  # the first few mistakes cost nothing
        assert client.login("wrong").status == 401
    locked = client.login("wrong again")
    assert locked.status == 401 and "wait 1 s" in locked.text
    # While locked out even the right password is refused without being looked at.
    refused = client.login(PASSWORD)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    # Another client is not locked out by this one's mistakes.
    assert _login_from(web_daemon, "127.0.0.2", PASSWORD) == 303
    time.sleep(1.1)
    doubled = client.login("still wrong")
    assert doubled.status == 401 and "wait 2 s" in doubled.text
    assert client.login(PASSWORD).status == 429
    time.sleep(2.1)
    assert client.login(PASSWORD).status == 303
    # A success clears the record: the next mistake is free again.
    assert web_daemon.client().login("wrong").status == 401
    assert "locked out" in web_daemon.log() and "wrong password from 127.0.0.1" in web_daemon.log()


def test_the_password_never_reaches_the_log(web_daemon):
    client = web_daemon.client()
    client.login("a-wrong-guess-0042")
    assert web_daemon.client().login(PASSWORD).status == 303
    wait_until(lambda: "logged in" in web_daemon.log(), 10, "the login in the log")
    log = web_daemon.log()
    assert PASSWORD not in log and "a-wrong-guess-0042" not in log
    assert "password from file" in log


def test_the_session_cookie_is_httponly_and_samesite_and_logout_ends_it(web_daemon):
    client = web_daemon.client()
    answer = client.login(PASSWORD)
    cookie = answer.headers["Set-Cookie"]
    assert "personalizer_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    assert client.get("/api/session").status == 200
    page = client.get("/")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert client.request("POST", "/logout", headers={"X-CSRF-Token": client.csrf}).status == 200
    assert client.get("/api/session").status == 401
    assert client.command("sample", SAMPLE).status == 401


def _listening_addresses(port: int) -> set[str]:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # LISTEN
                found.add(address)
    return found


def test_without_a_password_it_listens_on_loopback_only_and_says_how_to_open_it(
    start_web_daemon,
):
    from tests.web.conftest import free_port

    port = free_port()
    web = start_web_daemon(password=None, web={"listen": f"0.0.0.0:{port}"})
    base = web.base
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0
    log = web.log()
    assert f"no password is set, so the page listens on 127.0.0.1:{port} only" in log
    assert "/etc/personalizer/web_password" in log
    client = WebClient(base)
    page = client.get("/")  # no login on the board itself...
    assert page.status == 200 and "Set-Cookie" in page.headers
    session = client.get("/api/session").json()
    assert session["login"] is False
    client.csrf = session["csrf"]
    assert client.command("sample", SAMPLE, csrf=None).status == 403  # ...but still CSRF
    # A site whose name was pointed at 127.0.0.1 (DNS rebinding) sends its own Host name.
    rebound = WebClient(base).get("/", headers={"Host": f"evil.example:{port}"})
    assert rebound.status == 421
    wait_for_frame(client)
    assert client.command("sample", SAMPLE).json()["ok"]


def test_https_with_a_certificate_and_secure_cookies(start_web_daemon, tmp_path):
    certificate = make_server_certificate(tmp_path / "tls")
    web = start_web_daemon(web={"tls_cert": str(certificate.cert), "tls_key": str(certificate.key)})
    context = ssl.create_default_context(cafile=str(certificate.ca))
    client = WebClient(web.base, context=context)
    wait_until(lambda: _answers(client), 30, "the HTTPS page")
    answer = client.login(PASSWORD)
    assert answer.status == 303
    assert "Secure" in answer.headers["Set-Cookie"]
    assert "max-age" in client.get("/").headers["Strict-Transport-Security"]
    assert client.command("save", {}).json()["ok"]
    port = urllib.parse.urlsplit(web.base).port
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        plain.request("GET", "/login")
        answered = plain.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        answered = None
    finally:
        plain.close()
    assert answered in (None, 400)  # plain HTTP gets no page
    assert "web: the page is at https://127.0.0.1:" in web.log()


def _answers(client: WebClient) -> bool:
    try:
        return client.get("/login").status == 200
    except OSError:
        return False


def test_bad_bodies_and_commands_are_refused(web_daemon):
    client = web_daemon.logged_in()
    not_json = client.request(
        "POST",
        "/api/command/sample",
        b"{class: cat",
        {"Content-Type": "application/json", "X-CSRF-Token": client.csrf},
    )
    assert not_json.status == 400
    assert client.command("classify", {"image": "x"}).status == 404  # not a page command
    assert client.command("sample", {"class": "cat", "image": "AAAA"}).status == 400
    unknown = client.command("sample", {"class": "zebra"}).json()
    assert unknown["ok"] is False and "zebra" in unknown["error"]
    big = client.request(
        "POST",
        "/api/command/sample",
        json.dumps({"class": "cat", "pad": "x" * 100_000}).encode(),
        {"Content-Type": "application/json", "X-CSRF-Token": client.csrf},
    )
    assert big.status == 413
    assert_nothing_changed(web_daemon)


def test_a_kept_frames_picture_needs_a_session_and_an_existing_id(
    start_web_daemon, pretrained_bundle
):
    # Two photos of the replay are taught, the other two are unknown: kept for review.
    web_daemon = start_web_daemon(
        bundle_dir=pretrained_bundle, overrides={"model": {"classes": ["cat", "coffee"]}}
    )
    for name in ("cat", "coffee"):
        for index in (1, 2, 3):
            image = b64(photos.encode(photos.variant(name, index)))
            assert web_daemon.daemon.watch.command("sample", {"class": name, "image": image})["ok"]
    web_daemon.daemon.status(predicate=lambda s: s["review_pending"] >= 1)
    client = web_daemon.logged_in()
    items = client.command("review", {}).json()["items"]
    path = f"/api/review/{items[0]['id']}/image"
    picture = client.get(path)
    assert picture.status == 200 and picture.headers["Content-Type"] == "image/jpeg"
    assert picture.body[:2] == b"\xff\xd8"
    assert "private" in picture.headers["Cache-Control"]
    assert web_daemon.client().get(path).status == 401  # the same address without a session
    missing = client.get("/api/review/999999/image")
    assert missing.status == 404 and "kept frame 999999" in missing.json()["error"]
    for bad in ("/api/review/x/image", "/api/review/-1/image", "/api/review/1/../../state.db"):
        assert client.get(bad).status == 404, bad
