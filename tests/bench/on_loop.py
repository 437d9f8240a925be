"""host-pm-exporter with each reading of files run on the thread that starts it (the
event loop's, for a scrape), not handed to a reading worker: a measurement of what the
hand-off costs a whole scrape, never a way to run the exporter (a hung file would
hold the loop, and every client with it).  Run by scrape_latency.py ``--on-loop``;
takes the exporter's own arguments:

    .venv/bin/python tests/bench/on_loop.py --pm.probes=kernel --web.listen-address=127.0.0.1:9900
"""

from __future__ import annotations

import sys
from concurrent.futures import Future
from typing import Any, Callable

from host_pm_exporter import reading
from host_pm_exporter.main import main


class InThread:
    """`Workers.submit`, run at once in the calling thread."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        try:
            future.set_result(fn(*args))
        except BaseException as err:
            future.set_exception(err)
        return future


if __name__ == "__main__":
    reading.readers = InThread()  # type: ignore[assignment]
    sys.exit(main())
