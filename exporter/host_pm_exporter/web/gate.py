"""Basic auth on the server: a verdict known at once (no users, a malformed header, a
cached verdict) is given on the event loop and never waits; a bcrypt check runs on at
most `threads` threads, in arrival order, with at most `queue` checks waiting.  Beyond
that a request is refused at once (503) instead of waiting, and a check that waited
and whose client has left by the time a thread is free is dropped before it starts.  The same unknown
credentials arriving together share one check."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from host_pm_exporter.webconfig import Authenticator, Check, WebConfig
from host_pm_exporter.workers import Workers


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    BUSY = "busy"  # too many checks waiting: try again later
    GONE = "gone"  # the client left before its check started


class Gate:
    def __init__(self, auth: Authenticator, threads: int, queue: int) -> None:
        self.auth = auth
        self.threads = max(1, threads)
        self.queue = max(0, queue)
        self._workers = Workers("bcrypt", keep=self.threads)
        self._free = self.threads
        self._waiters: list[asyncio.Future[None]] = []  # in arrival order
        self._running: dict[tuple[str, bytes, bytes], asyncio.Future[bool]] = {}
        self.checks = 0  # bcrypt checks run, since start
        self.dropped = 0  # checks dropped: the client had left
        self.refused = 0  # requests refused: the queue was full

    async def verdict(self, config: WebConfig, authorization: str | None, gone: Callable[[], bool]) -> Verdict:
        known = self.auth.verdict(config, authorization)
        if isinstance(known, bool):
            return Verdict.ALLOWED if known else Verdict.DENIED
        shared = self._running.get(known.key)
        if shared is not None:
            return Verdict.ALLOWED if await asyncio.shield(shared) else Verdict.DENIED
        if not self._free:
            if len(self._waiters) >= self.queue:
                self.refused += 1
                return Verdict.BUSY
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(turn)
            try:
                await turn  # a thread was handed to us: self._free was not given back
            except BaseException:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                raise
            if gone():  # it left while it waited (one that half-closes and waits is served when not queued)
                self.dropped += 1
                self._release()
                return Verdict.GONE
        else:
            self._free -= 1
        shared = self._running.get(known.key)  # the same credentials were checked meanwhile
        if shared is not None:
            self._release()
            return Verdict.ALLOWED if await asyncio.shield(shared) else Verdict.DENIED
        return Verdict.ALLOWED if await self._run(known) else Verdict.DENIED

    async def _run(self, check: Check) -> bool:
        self.checks += 1
        future = asyncio.wrap_future(self._workers.submit(self.auth.verify, check))
        self._running[check.key] = future

        def done(_: asyncio.Future[bool]) -> None:  # also when the waiter is cancelled
            self._running.pop(check.key, None)
            self._release()

        future.add_done_callback(done)
        return await asyncio.shield(future)

    def _release(self) -> None:
        while self._waiters:
            turn = self._waiters.pop(0)
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1
