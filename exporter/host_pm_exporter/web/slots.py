"""The connection slots: at most `cap` connections, each in one of three states.

- waiting: no complete request yet (a new connection, one in its TLS handshake, or one
  whose request headers are still arriving), since it was accepted or since the first
  byte of its request;
- idle: kept alive between requests, since its last answer;
- busy: inside a request (its headers are complete).

When every slot is taken, a new connection is served by evicting the connection that
has waited longest without completing a request: the oldest waiting one, else the
oldest idle one.  Only when every slot is busy is the new one refused.  So holding
connections open without completing requests (slowloris) cannot keep a scraper out: a
slot holder is evicted by the next connection that needs its slot, oldest first.  Each
state is an insertion-ordered dict, so every step is O(1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

C = TypeVar("C")


class Slots(Generic[C]):
    def __init__(self, cap: int, evict: Callable[[C], None]) -> None:
        self.cap = max(1, cap)
        self._evict = evict
        self.waiting: dict[C, None] = {}
        self.idle: dict[C, None] = {}
        self.busy: dict[C, None] = {}
        self.evicted = 0  # connections closed to make room, since start

    def __len__(self) -> int:
        return len(self.waiting) + len(self.idle) + len(self.busy)

    def admit(self, conn: C) -> bool:
        """Take a slot for a new connection (as waiting), evicting one if need be; False
        when every slot is busy."""
        if len(self) >= self.cap:
            pool = self.waiting or self.idle
            if not pool:
                return False
            victim = next(iter(pool))
            self.leave(victim)
            self.evicted += 1
            self._evict(victim)
        self.waiting[conn] = None
        return True

    def to_waiting(self, conn: C) -> None:
        """The first byte of a request came (or a TLS handshake began)."""
        if self._move(conn):
            self.waiting[conn] = None

    def to_idle(self, conn: C) -> None:
        if self._move(conn):
            self.idle[conn] = None

    def to_busy(self, conn: C) -> None:
        if self._move(conn):
            self.busy[conn] = None

    def holds(self, conn: C) -> bool:
        return conn in self.waiting or conn in self.idle or conn in self.busy

    def leave(self, conn: C) -> None:
        """Free the slot (idempotent)."""
        self.waiting.pop(conn, None)
        self.idle.pop(conn, None)
        self.busy.pop(conn, None)

    def _move(self, conn: C) -> bool:
        """Take `conn` out of its state; False when it holds no slot (evicted)."""
        if not self.holds(conn):
            return False
        self.leave(conn)
        return True
