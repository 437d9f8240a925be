"""The sleep-state readers and the decision table, on text."""

from __future__ import annotations

import pytest

from host_pm_exporter.readers import ParseError
from host_pm_exporter.readers.power import ModeList, PowerFacts, parse_mode_list, parse_sleep_states
from host_pm_exporter.sleep import kernel_operations, supported_states


def facts(state: str | None, mem_sleep: str | None = None, disk: str | None = None, rtc: bool = True) -> PowerFacts:
    return PowerFacts(
        state=None if state is None else parse_sleep_states(state),
        mem_sleep=None if mem_sleep is None else parse_mode_list(mem_sleep),
        disk=None if disk is None else parse_mode_list(disk),
        rtc_wakealarm=rtc,
    )


def test_mode_list_marks_the_selected_mode() -> None:
    assert parse_mode_list("s2idle shallow [deep]\n") == ModeList(("s2idle", "shallow", "deep"), "deep")
    assert parse_mode_list("[s2idle]\n") == ModeList(("s2idle",), "s2idle")
    assert parse_mode_list("\n") == ModeList((), None)


@pytest.mark.parametrize(
    "text",
    [
        "s2idle deep\n",
        "[s2idle] [deep]\n",
        "[deep\n",
        "deep]\n",
        "s2idle [DEEP]\n",
        "\x07bell [x]\n",
        "a,b [c]\n",
    ],
)
def test_mode_list_rejects_what_the_kernel_never_writes(text: str) -> None:
    with pytest.raises(ParseError):
        parse_mode_list(text)


@pytest.mark.parametrize("text", ["freeze mem disk [x]\n", "freeze\x01\n", "mem;rm\n", "FREEZE\n"])
def test_sleep_states_rejects_garbage(text: str) -> None:
    with pytest.raises(ParseError):
        parse_sleep_states(text)


def test_unknown_but_well_formed_state_words_are_kept_and_ignored() -> None:
    states = parse_sleep_states("freeze mem disk future_state\n")
    assert "future_state" in states
    assert supported_states(facts("freeze mem disk future_state\n", "[s2idle]\n"))["S3"] is False


def test_mem_alone_is_not_s3_when_mem_sleep_exists() -> None:
    got = supported_states(facts("freeze mem disk\n", "[s2idle]\n", "[platform] shutdown\n"))
    assert got["S3"] is False
    assert got["S2idle"] is True


def test_old_kernel_without_mem_sleep_falls_back_to_mem() -> None:
    assert supported_states(facts("freeze mem\n"))["S3"] is True
    assert supported_states(facts("freeze\n"))["S3"] is False


def test_shallow_or_standby_is_s1() -> None:
    assert supported_states(facts("freeze mem\n", "s2idle [shallow]\n"))["S1"] is True
    assert supported_states(facts("freeze standby\n"))["S1"] is True
    assert supported_states(facts("freeze mem\n", "s2idle [deep]\n"))["S1"] is False


def test_disabled_hibernation_is_not_s4_even_if_state_lists_disk() -> None:
    got = supported_states(facts("freeze mem disk\n", "s2idle [deep]\n", "[disabled]\n"))
    assert got["S4"] is False
    assert got["hybrid"] is False
    assert got["suspend_then_hibernate"] is False


def test_hybrid_needs_the_suspend_disk_mode() -> None:
    assert supported_states(facts("mem disk\n", "[deep]\n", "[platform] shutdown reboot\n"))["hybrid"] is False
    assert supported_states(facts("mem disk\n", "[deep]\n", "platform [suspend]\n"))["hybrid"] is True


def test_suspend_then_hibernate_needs_an_rtc_wakealarm() -> None:
    base = ("freeze mem disk\n", "s2idle [deep]\n", "[platform] suspend\n")
    assert supported_states(facts(*base, rtc=True))["suspend_then_hibernate"] is True
    assert supported_states(facts(*base, rtc=False))["suspend_then_hibernate"] is False


def test_absent_power_files_support_nothing() -> None:
    got = supported_states(facts(None))
    assert not any(got.values())
    assert not any(kernel_operations(got).values())


def test_kernel_operation_suspend_is_any_suspend_state() -> None:
    ops = kernel_operations(supported_states(facts("freeze\n", "[s2idle]\n")))
    assert ops == {
        "suspend": True,
        "hibernate": False,
        "suspend_hybrid": False,
        "suspend_then_hibernate": False,
    }
