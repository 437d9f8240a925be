"""What h11 lets through and the server refuses: the limits on a request's head and
body, and requests whose framing is ambiguous."""

from __future__ import annotations

import re

import h11

MAX_BODY = 64 * 1024  # no route takes a body: a little is read and dropped, more is refused
MAX_HEADERS = 16 * 1024
_HEAD_END = re.compile(rb"\n\r?\n")  # where h11 sees the end of a request's head


def check_head(request: h11.Request) -> None:
    """What h11 lets through and we refuse: another HTTP version than 1.0 or 1.1, a
    head over the limit, Transfer-Encoding with Content-Length (RFC 9112 6.1: the
    next request could hide in the body), an Expect other than 100-continue, a body
    announced too large for a client waiting for 100 Continue."""
    if request.http_version not in (b"1.0", b"1.1"):
        raise h11.RemoteProtocolError("unsupported HTTP version", error_status_hint=505)
    names: dict[bytes, list[bytes]] = {}
    size = len(request.method) + len(request.target) + 12
    for name, value in request.headers:
        names.setdefault(name, []).append(value)
        size += len(name) + len(value) + 4
    if size > MAX_HEADERS:
        raise h11.RemoteProtocolError("request header too large", error_status_hint=431)
    if b"transfer-encoding" in names and b"content-length" in names:
        raise h11.RemoteProtocolError("Transfer-Encoding with Content-Length", error_status_hint=400)
    if any(value.lower() != b"100-continue" for value in names.get(b"expect", ())):
        raise h11.RemoteProtocolError("unsupported expectation", error_status_hint=417)
    length = names.get(b"content-length")
    if length and length[0].isdigit() and int(length[0]) > MAX_BODY:
        raise h11.RemoteProtocolError("request body too large", error_status_hint=413)


def head_fits(conn: h11.Connection) -> None:
    """However the bytes came (one write or many), a head over the limit is refused
    before h11 parses it."""
    if conn.their_state is h11.IDLE and not _HEAD_END.search(conn.trailing_data[0], 0, MAX_HEADERS + 2):
        raise h11.RemoteProtocolError("request header too large", error_status_hint=431)
