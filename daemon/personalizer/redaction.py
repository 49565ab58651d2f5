"""Secrets out of what people see: URLs and error texts shown in logs, the status, MQTT, the page.

A camera URL in the config carries no credentials (config checks refuse them), but the URL
handed to the decoder does, and the decoder's error messages quote it; a user may also paste a
URL with a password before the check tells them not to. Everything shown passes through here.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry secrets in cameras' URLs (Foscam's pwd=, tokens of cloud relays).
SECRET_QUERY_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|sig", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` without its password (``user:***@``) and with secret query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # not even a URL: show nothing of it rather than a secret
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if has_password else f"{user}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL in it redacted and each of ``secrets`` (also percent-encoded, as
    it appears in a URL) replaced by the mask."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, MASK)
    return text
