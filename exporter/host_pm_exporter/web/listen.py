"""Where the server listens, and the limits it holds its connections to (the flags
`--web.max-connections`, `--web.read-header-timeout` and the like)."""

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
