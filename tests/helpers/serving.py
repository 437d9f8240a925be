"""The HTTP server run in this process, on an event loop of its own in a thread: for tests
that read its counters or give it routes and readings of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from host_pm_exporter.web import Server
from tests.conftest import wait_until


@contextmanager
def serving(server: Server) -> Iterator[None]:
    """`server` serving until the block ends, then stopped and its loop closed."""
    loop = asyncio.new_event_loop()
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        stop.append(asyncio.Event())  # made in the loop (Python 3.9 binds it to one)
        await server.serve(stop[0])

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        wait_until(lambda: bool(stop), "the server started")
        yield
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        thread.join(15)
        loop.close()
