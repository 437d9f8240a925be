"""The plain cpulists (``5``, ``4-7``, ``3,515``) take a short path in `parse_cpulist`:
it must accept and refuse exactly what the general loop does."""

from __future__ import annotations

import pytest

from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.cpulist import MAX_CPUS, parse_cpulist


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("5\n", {5}), ("4-7\n", {4, 5, 6, 7}), ("3,515\n", {3, 515}), ("7,7\n", {7}), ("0-0", {0}),
     ("0-3,8", {0, 1, 2, 3, 8}), ("9,1-2", {1, 2, 9})],
)  # fmt: skip
def test_plain_lists(text: str, cpus: set[int]) -> None:
    assert parse_cpulist(text) == cpus


@pytest.mark.parametrize(
    "text",
    ["\u00b2", "1,\u00b2", "1-\u00b2", "12345678901", "1,12345678901", ",", "1,", "-", "5-", "-5", "3-1", "1 2",
     f"0-{MAX_CPUS}", ",".join(str(n) for n in range(MAX_CPUS + 1))],
)  # fmt: skip
def test_plain_looking_garbage_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_cpulist(text)


def test_the_largest_plain_lists_are_kept() -> None:
    assert len(parse_cpulist(f"0-{MAX_CPUS - 1}")) == MAX_CPUS
    assert len(parse_cpulist(",".join(str(n) for n in range(MAX_CPUS)))) == MAX_CPUS
