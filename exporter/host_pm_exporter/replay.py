"""Facts made again only when what they were made from has changed.

A collector's facts (and each fact collectors share) are a function of what it asked
the host, through `HostFS`, and of the shared facts it took: the same answers, in the
same order, make the same facts.  So a reading records each one's questions and answers
(its trace: `HostFS.trace`, and the shared facts taken), and the next reading asks the
host every one of those questions again, afresh: when every answer is equal to the one
recorded, the facts made from them last time are the facts this reading would make, and
are taken as they are; at the first answer that differs, the facts are made anew from
the host, as if nothing had been kept.  Every scrape still reads every file it reads;
what is saved is the parsing of what has not changed (most of a scrape's Python on a
host at rest).

Kept only for a run that was clean: no error and no fact given up (those are reported
by every scrape that meets them, so they are made again each time).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Callable

from host_pm_exporter.hostfs import Failed, HostFS, Op

FACT = "fact"  # a trace's operation for a shared fact taken (`facts.ScrapeFacts`)


@dataclass(frozen=True)
class Run:
    """A run of questions of one kind (file reads, link counts ...) of a trace, asked
    again as one step (`HostFS.same`)."""

    op: str
    asked: tuple[tuple[str, object], ...]


Step = Op | Run  # a trace as it is asked again: a shared fact taken is a step of its own


@dataclass(frozen=True)
class Made:
    """Facts, and the trace of what they were made from, as it is asked again: its
    runs of one kind of question, and the shared facts taken between them."""

    value: object
    steps: tuple[Step, ...] = ()

    @classmethod
    def of(cls, trace: list[Op], value: object) -> Made:
        steps: list[Step] = []
        run: list[tuple[str, object]] = []
        kind = ""
        for op, arg, was in trace:
            if op == kind:
                run.append((arg, was))
                continue
            if run:
                steps.append(Run(kind, tuple(run)))
            if op == FACT:
                steps.append((op, arg, was))
                kind, run = "", []
            else:
                kind, run = op, [(arg, was)]
        if run:
            steps.append(Run(kind, tuple(run)))
        return cls(value, tuple(steps))


class Memory:
    """The last clean facts of each collector and shared fact, by key, with their traces:
    one per server (readings of any set of collectors share it), at most `cap` keys."""

    def __init__(self, cap: int = 512) -> None:
        self.cap = cap
        self._made: dict[Hashable, Made] = {}
        self._lock = threading.Lock()
        self.replayed = 0  # facts taken again because every answer was the same

    def get(self, key: Hashable) -> Made | None:
        return self._made.get(key)

    def put(self, key: Hashable, made: Made) -> None:
        with self._lock:
            if key in self._made or len(self._made) < self.cap:
                self._made[key] = made

    def __len__(self) -> int:
        return len(self._made)


def answers_again(made: Made, fs: HostFS, fact: Callable[[str], object], errors: tuple[type[Exception], ...]) -> bool:
    """Whether the host answers every question of `made`'s trace as it did: each asked
    again, in order (each run of one kind by `HostFS.same`, a shared fact through
    `fact`), stopping at the first answer that differs.  Nothing asked here is recorded
    in `fs`'s own trace."""
    outer, fs.trace = fs.trace, None
    try:
        for step in made.steps:
            if isinstance(step, Run):
                if not fs.same(step.op, step.asked):
                    return False
                continue
            _, key, was = step
            try:
                now = fact(key)
            except errors as err:
                now = Failed.of(err)
            if now is not was and now != was:
                return False
        return True
    finally:
        fs.trace = outer
