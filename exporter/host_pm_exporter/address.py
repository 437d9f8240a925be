"""Where the exporter listens, and the limits it serves with: what the command line
needs of the HTTP server before the server itself (and asyncio) is loaded."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_connections: int = 512
    max_requests: int = 40
    read_header_timeout: float = 10.0
    tls_handshake_timeout: float = 5.0
    idle_timeout: float = 60.0
    write_timeout: float = 30.0
    drain_timeout: float = 10.0
    request_timeout: float = 30.0  # the status page or capabilities XML: past this, 503 and the slot is freed


def parse_listen_address(value: str) -> tuple[str, int]:
    """Split ``host:port``, ``:port`` or ``[v6]:port``.

    >>> parse_listen_address(":8731"), parse_listen_address("[::1]:80")
    (('', 8731), ('::1', 80))
    """
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"invalid listen address {value!r}: expected [host]:port")
        port = rest[1:]
    else:
        host, sep, port = value.rpartition(":")
        if not sep or ":" in host:
            raise ValueError(f"invalid listen address {value!r}: expected host:port or :port")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid port in listen address {value!r}")
    return host, int(port)


def listen(host: str, port: int, backlog: int = 512) -> socket.socket:
    """A listening socket; an empty host means every address (IPv6 and IPv4 where
    possible, as node_exporter's ":port")."""
    if host == "":
        candidates = [(socket.AF_INET, "0.0.0.0")]  # noqa: S104 - ":port" means every address
        if socket.has_ipv6:
            candidates.insert(0, (socket.AF_INET6, "::"))
    else:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        candidates = [(family, str(addr[0])) for family, _, _, _, addr in infos]
    error: OSError | None = None
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and address == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((address, port))
            sock.listen(backlog)
        except OSError as err:
            sock.close()
            error = err
            continue
        sock.setblocking(False)
        return sock
    raise error or OSError(f"cannot listen on {host}:{port}")
