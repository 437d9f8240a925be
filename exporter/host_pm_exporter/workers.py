"""Daemon threads for blocking work (reading the host, a scrape, a bcrypt check) that
wait for the next job when done, so a scrape does not pay a thread start.

Unlike a thread pool, a job never queues behind a busy thread: with no idle thread, a
new one starts.  So a thread stuck in a hung read (an NFS mount under the roots) holds
itself only, and daemon threads never keep the process from exiting.  At most `keep`
idle threads wait; the others end.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

T = TypeVar("T")
_Job = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class Workers:
    def __init__(self, name: str, keep: int = 4, idle_for: float = 60.0) -> None:
        self._name = name
        self._keep = keep
        self._idle_for = idle_for
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        job: _Job = (fn, args, future)
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is not None:
            inbox.put(job)
        else:
            threading.Thread(target=self._work, args=(job,), name=self._name, daemon=True).start()
        return future

    def _work(self, job: _Job) -> None:
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        while True:
            fn, args, future = job
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args)
                except BaseException as err:  # handed to the caller, never raised here
                    future.set_exception(err)
                else:
                    future.set_result(result)
            del job, fn, args, future
            with self._lock:
                if len(self._idle) >= self._keep:
                    return
                self._idle.append(inbox)
            try:
                job = inbox.get(timeout=self._idle_for)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # a job was handed over just as the wait ended
