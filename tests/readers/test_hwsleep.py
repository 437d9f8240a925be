"""The sleep-evidence reader (readers/hwsleep.py): the fixture hosts against their
expected.json, the real captures of tests/real/sleep against what their sources say,
and bad input in every file: no exception, no wrong value, the bad fact named."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host_pm_exporter import hostfs
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.logs import Once
from host_pm_exporter.readers import ParseError, hwsleep
from host_pm_exporter.readers.hwsleep import (
    LOW_POWER_S0_IDLE_CAPABLE,
    MAX_WAKEUP_DEVICES,
    SLEEP_STATES,
    HwSleep,
    SleepEvidence,
    hw_sleep_summary,
    parse_acpi_wakeup,
    parse_fadt_flags,
    read_sleep_evidence,
    wakeup_summary,
)
from tests.conftest import FIXTURES, expected, need_root, need_tool

CAPTURES = json.loads((Path(__file__).parent.parent / "real" / "sleep" / "captures.json").read_text())["captures"]
EVIDENCE_HOSTS = ["laptop-s2idle", "server-s3", "old-kernel"]
HEADER = "Device\tS-state\t  Status   Sysfs node\n"
FACP = ("sys", "firmware", "acpi", "tables", "FACP")


def fs_of(root: Path) -> HostFS:
    return HostFS(str(root / "proc"), str(root / "sys"), str(root))


def seconds(us: int | None) -> float | None:
    return None if us is None else us / 1_000_000


# --- the fixture hosts -------------------------------------------------------------------


@pytest.mark.parametrize("host", EVIDENCE_HOSTS)
def test_fixture_hosts_give_their_expected_evidence(host: str) -> None:
    want = expected(host)["sleep_evidence"]
    facts = read_sleep_evidence(fs_of(FIXTURES / host))
    assert facts.errors == {}
    assert not facts.fadt_denied
    hw = facts.hw_sleep
    got_hw = None if not hw.present else {"last": seconds(hw.last_us), "total": seconds(hw.total_us),
                                          "max": seconds(hw.max_us)}  # fmt: skip
    assert got_hw == want["hw_sleep_seconds"]
    lpi = facts.low_power_idle
    got_lpi = None if lpi.cpu_us is None and lpi.system_us is None else {
        "cpu": seconds(lpi.cpu_us), "system": seconds(lpi.system_us)}  # fmt: skip
    assert got_lpi == want["low_power_idle_seconds"]
    table = facts.acpi_wakeup
    got_counts = None if table is None else {f"{s}/{str(e).lower()}": n for (s, e), n in table.counts().items()}
    assert got_counts == want["acpi_wakeup"]
    assert ([d.name for d in table.devices] if table else []) == want["acpi_wakeup_devices"]
    assert (None if table is None else table.can_wake_from("S3")) == want["can_wake_from_S3"]
    assert (None if facts.low_power_s0 is None else int(facts.low_power_s0)) == want["low_power_s0"]
    assert hw_sleep_summary(facts) == want["summary"]
    assert wakeup_summary(facts.acpi_wakeup) == want["wakeup_summary"]


def test_the_server_table_keeps_a_device_with_two_physical_nodes_as_one() -> None:
    table = read_sleep_evidence(fs_of(FIXTURES / "server-s3")).acpi_wakeup
    assert table is not None
    (nic,) = [d for d in table.devices if d.name == "NIC0"]
    assert nic.nodes == ("pci:0000:19:00.0", "pci:0000:19:00.1")
    assert nic.enabled  # its first node wakes (eno1 has wakeup enabled in the same tree)


# --- real captures -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["surface-laptop-1-facp", "qemu-q35-facp"])
def test_real_fadts_decode_as_iasl_decoded_them(name: str) -> None:
    capture = CAPTURES[name]
    table = bytes.fromhex(capture["hex"])
    assert sum(table) % 256 == 0  # ACPI checksum: the hex was carried in whole
    flags = parse_fadt_flags(table)
    assert flags == int(capture["expected"]["flags"], 16)
    assert bool(flags & LOW_POWER_S0_IDLE_CAPABLE) == bool(capture["expected"]["Low Power S0 Idle (V5)"])


@pytest.mark.parametrize(("host", "name"), [("laptop-s2idle", "surface-laptop-1-facp"), ("server-s3", "qemu-q35-facp")])
def test_fixture_fadts_are_the_real_tables(host: str, name: str) -> None:
    assert (FIXTURES / host).joinpath(*FACP).read_bytes() == bytes.fromhex(CAPTURES[name]["hex"])


def test_real_wakeup_table_counts_as_its_source_says() -> None:
    capture = CAPTURES["amd-desktop-acpi-wakeup"]
    table = parse_acpi_wakeup(capture["text"])
    assert {f"{s}/{str(e).lower()}": n for (s, e), n in table.counts().items()} == capture["expected"]["counts"]


def test_old_kernels_wrote_a_space_for_the_star() -> None:
    """Kernels before the valid-only filter printed ' disabled' (a space, no star)."""
    table = parse_acpi_wakeup(HEADER + "USB0\t  S3\t disabled  pci:0000:00:1d.0\nSLPB\t  S4\t*enabled   \n")
    assert table.counts() == {("S3", False): 1, ("S4", True): 1}
    assert table.devices[1].nodes == ()


def test_physical_nodes_of_any_bus_are_kept_as_written() -> None:
    table = parse_acpi_wakeup(
        HEADER + "I2C1\t  S4\t*enabled   i2c:i2c-ELAN0000:00\nAWAC\t  S4\t*enabled   platform:ACPI000E:00\n"
        "RTC\t  S3\t*disabled  no-bus:alarmtimer.0.auto\n"
    )
    assert [d.nodes for d in table.devices] == [
        ("i2c:i2c-ELAN0000:00",),
        ("platform:ACPI000E:00",),
        ("no-bus:alarmtimer.0.auto",),
    ]


# --- the summary ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "text"),
    [
        (
            SleepEvidence(3, HwSleep(1_870_000_000, 9_000_000_000, 4_294_967_295)),
            "last suspend: 31 min in hardware sleep",
        ),
        (SleepEvidence(3, HwSleep(42_000_000, 42_000_000, None)), "last suspend: 42 s in hardware sleep"),
        (SleepEvidence(3, HwSleep(0, 5_000_000, 4_294_967_295)), "last suspend: never reached hardware sleep"),
        (
            SleepEvidence(1, HwSleep(4_294_967_295, 4_294_967_295, 4_294_967_295)),
            "last suspend: at least 71 min in hardware sleep (the counter's limit)",
        ),
        (SleepEvidence(0, HwSleep(0, 0, 4_294_967_295)), "never suspended since boot"),
        (SleepEvidence(0, HwSleep()), "never suspended since boot"),
        (SleepEvidence(7, HwSleep()), "this kernel does not record hardware sleep"),
        (SleepEvidence(None, HwSleep()), "this kernel does not record hardware sleep"),
        (SleepEvidence(None, HwSleep(0, 0, None)), "no hardware sleep recorded since boot"),
        (
            SleepEvidence(errors={"hw_sleep": "/x/last_hw_sleep: not a non-negative integer: 'x'"}),
            "hardware sleep unknown: /x/last_hw_sleep: not a non-negative integer: 'x'",
        ),
    ],
)
def test_summary_says_what_the_counters_prove(facts: SleepEvidence, text: str) -> None:
    assert hw_sleep_summary(facts) == text


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture
def laptop(host_copy: Callable[..., Path]) -> Path:
    return host_copy("laptop-s2idle")


def spoil(root: Path, relative: str, content: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def assert_only(facts: SleepEvidence, bad: str) -> None:
    """`bad` failed, visibly; every other fact of the laptop stands as expected."""
    assert set(facts.errors) == {bad}, facts.errors
    assert facts.problem is not None
    assert bad in facts.problem
    want = expected("laptop-s2idle")["sleep_evidence"]
    if bad != "hw_sleep":
        assert seconds(facts.hw_sleep.total_us) == want["hw_sleep_seconds"]["total"]
    else:
        assert facts.hw_sleep == HwSleep()  # no half-read counter
    if bad != "low_power_idle":
        assert seconds(facts.low_power_idle.system_us) == want["low_power_idle_seconds"]["system"]
    else:
        assert facts.low_power_idle.cpu_us is None
        assert facts.low_power_idle.system_us is None
    if bad != "acpi_wakeup":
        assert facts.acpi_wakeup is not None
        assert len(facts.acpi_wakeup.devices) == 9
    else:
        assert facts.acpi_wakeup is None
    assert facts.low_power_s0 is (None if bad == "fadt" else True)


HW = "sys/power/suspend_stats"
LPI = "sys/devices/system/cpu/cpuidle"
BAD_COUNTERS = [b"", b"\n", b"garbage\n", b"12 34\n", b"-5\n", b"1.5\n", b"\x00", b"1\x002\n", b"\xff\xfe\n",
                b"9" * 21 + b"\n", "\u00b2\n".encode()]  # fmt: skip


@pytest.mark.parametrize("content", BAD_COUNTERS)
@pytest.mark.parametrize(
    ("relative", "fact"),
    [
        (f"{HW}/last_hw_sleep", "hw_sleep"),
        (f"{HW}/total_hw_sleep", "hw_sleep"),
        (f"{HW}/max_hw_sleep", "hw_sleep"),
        (f"{LPI}/low_power_idle_cpu_residency_us", "low_power_idle"),
        (f"{LPI}/low_power_idle_system_residency_us", "low_power_idle"),
    ],
)
def test_a_bad_counter_costs_its_own_fact(laptop: Path, relative: str, fact: str, content: bytes) -> None:
    spoil(laptop, relative, content)
    facts = read_sleep_evidence(fs_of(laptop))
    assert_only(facts, fact)
    assert relative.rsplit("/", 1)[1] in facts.errors[fact]  # names the file


def test_a_last_sleep_longer_than_the_total_is_not_believed(laptop: Path) -> None:
    spoil(laptop, f"{HW}/last_hw_sleep", b"9512733001\n")
    facts = read_sleep_evidence(fs_of(laptop))
    assert_only(facts, "hw_sleep")
    assert "more than total_hw_sleep" in facts.errors["hw_sleep"]


def test_absent_counters_are_no_facts_never_zero(laptop: Path) -> None:
    for name in ("last_hw_sleep", "total_hw_sleep", "max_hw_sleep"):
        (laptop / HW / name).unlink()
    shutil.rmtree(laptop / "proc" / "acpi")
    (laptop.joinpath(*FACP)).unlink()
    facts = read_sleep_evidence(fs_of(laptop))
    assert facts.errors == {}
    assert facts.hw_sleep == HwSleep()
    assert facts.acpi_wakeup is None
    assert facts.low_power_s0 is None
    assert facts.low_power_idle.cpu_us is not None  # the others stand
    assert hw_sleep_summary(facts) == "this kernel does not record hardware sleep"


BAD_TABLES = [
    b"",
    b"\n",
    b"garbage\n",
    b"Device\tS-state\n",
    b"\x00" * 40,
    HEADER.encode() + b"LID0\t  S4\t*enabled   platform:PNP0C0D:00\x00\n",
    HEADER.encode() + b"LID0\t  S9\t*enabled\n",  # S9: no ACPI sleep state
    HEADER.encode() + b"LID0\t  S4294967295\t*enabled\n",
    HEADER.encode() + b"LID0\t  S4\t*maybe\n",
    HEADER.encode() + b"LID0\t  S4\n",
    HEADER.encode() + b"\t\t*enabled   pci:0000:00:14.0\n",  # a node before any device
    HEADER.encode() + b"<script>\t  S4\t*enabled\n",
    HEADER.encode() + b"LID0\t  S4\t*enabled   pci:0000:00:14.0 extra\n",
    HEADER.encode() + b"\xc3\x28\t  S4\t*enabled\n",
    HEADER.encode() + b"DEV\t  S4\t*disabled\n" * (MAX_WAKEUP_DEVICES + 1),
]


@pytest.mark.parametrize("content", BAD_TABLES)
def test_a_bad_wakeup_table_costs_its_own_fact(laptop: Path, content: bytes) -> None:
    spoil(laptop, "proc/acpi/wakeup", content)
    facts = read_sleep_evidence(fs_of(laptop))
    assert_only(facts, "acpi_wakeup")
    assert "/proc/acpi/wakeup" in facts.errors["acpi_wakeup"]


def fadt(length: int = 276, flags: int = LOW_POWER_S0_IDLE_CAPABLE, size: int | None = None) -> bytes:
    """A FADT of `length` bytes (header Length field), cut or padded to `size`."""
    table = bytearray(b"FACP" + length.to_bytes(4, "little") + bytes(max(length, 116) - 8))
    table[112:116] = flags.to_bytes(4, "little")
    return bytes(table[: size if size is not None else length])


BAD_FADTS = [
    b"",
    b"FACP",
    b"\x00" * 276,
    b"APIC" + fadt()[4:],  # another table
    fadt(size=112),  # cut before the flags
    fadt(size=114),  # cut inside the flags
    fadt(length=100, size=276),  # a Length that ends before the flags
    fadt(length=276, size=200),  # truncated: fewer bytes than the Length says
    fadt(length=0xFFFFFFFF, size=276),
    os.urandom(64),
]


@pytest.mark.parametrize("content", BAD_FADTS)
def test_a_bad_fadt_costs_its_own_fact(laptop: Path, content: bytes) -> None:
    spoil(laptop, "/".join(FACP), content)
    facts = read_sleep_evidence(fs_of(laptop))
    assert_only(facts, "fadt")
    assert "FACP" in facts.errors["fadt"]


def test_the_flag_is_bit_21_of_the_flags_and_nothing_else() -> None:
    assert parse_fadt_flags(fadt(flags=LOW_POWER_S0_IDLE_CAPABLE)) & LOW_POWER_S0_IDLE_CAPABLE
    assert not parse_fadt_flags(fadt(flags=0xFFFFFFFF ^ LOW_POWER_S0_IDLE_CAPABLE)) & LOW_POWER_S0_IDLE_CAPABLE
    assert parse_fadt_flags(fadt(length=116)) == LOW_POWER_S0_IDLE_CAPABLE  # an ACPI 1.0-sized table
    assert parse_fadt_flags(fadt(length=116, size=116) + b"\xff" * 8) == LOW_POWER_S0_IDLE_CAPABLE  # longer read


def test_a_directory_or_fifo_in_place_of_a_file_costs_its_fact(laptop: Path) -> None:
    facp = laptop.joinpath(*FACP)
    facp.unlink()
    facp.mkdir()
    wakeup = laptop / "proc" / "acpi" / "wakeup"
    wakeup.unlink()
    os.mkfifo(wakeup)
    facts = read_sleep_evidence(fs_of(laptop))  # a FIFO would hang a plain open(): it must not
    assert set(facts.errors) == {"fadt", "acpi_wakeup"}
    assert "not a regular file" in facts.errors["acpi_wakeup"]


def deny(monkeypatch: pytest.MonkeyPatch, suffix: str, code: int = errno.EACCES) -> None:
    """Opening a path that ends with `suffix` fails with `code`, as for an unprivileged
    user (root reads everything, so a chmod would prove nothing when tests run as root)."""
    real = hostfs._open

    def guarded(path: str, flags: int, **kwargs: int) -> int:
        if str(path).endswith(suffix):
            raise OSError(code, os.strerror(code), path)
        return real(path, flags, **kwargs)

    monkeypatch.setattr(hostfs, "_open", guarded)


def test_unprivileged_fadt_is_no_fact_logged_once(laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny(monkeypatch, "/tables/FACP")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logger = hwsleep.log
    monkeypatch.setattr(hwsleep, "_once", Once(logger))  # a fresh process's memory of what it logged
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    try:
        for _ in range(3):
            facts = read_sleep_evidence(fs_of(laptop))
            assert facts.low_power_s0 is None
            assert facts.fadt_denied
            assert facts.errors == {}  # the expected state of an unprivileged exporter, not a failure
            assert facts.hw_sleep.total_us == 9_512_733_000
    finally:
        logger.removeHandler(handler)
    assert [r.levelno for r in records] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "root only" in records[0].getMessage()


@pytest.mark.parametrize(
    ("suffix", "fact"),
    [("/acpi/wakeup", "acpi_wakeup"), ("last_hw_sleep", "hw_sleep"), ("low_power_idle_cpu_residency_us",
                                                                        "low_power_idle")],
)  # fmt: skip
def test_permission_denied_elsewhere_is_a_visible_failure(
    laptop: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, fact: str
) -> None:
    deny(monkeypatch, suffix)
    facts = read_sleep_evidence(fs_of(laptop))
    assert_only(facts, fact)
    assert "Permission denied" in facts.errors[fact]


def test_an_io_error_on_the_fadt_is_a_failure_not_a_privilege(laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deny(monkeypatch, "/tables/FACP", errno.EIO)
    facts = read_sleep_evidence(fs_of(laptop))
    assert not facts.fadt_denied
    assert_only(facts, "fadt")


# --- any input -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\t \n*SLIDXHC0123459:.-abdeln")), max_size=400))
def test_any_wakeup_text_parses_or_is_refused(body: str) -> None:
    try:
        table = parse_acpi_wakeup(HEADER + body)
    except ParseError:
        return
    counts = table.counts()
    assert set(counts) <= {(s, e) for s in SLEEP_STATES for e in (True, False)}  # bounded label values
    assert sum(counts.values()) == len(table.devices)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_fadt_parse_or_are_refused(data: bytes) -> None:
    try:
        flags = parse_fadt_flags(data)
    except ParseError:
        return
    assert data[:4] == b"FACP"
    assert len(data) >= 116
    assert flags == int.from_bytes(data[112:116], "little")


# --- this machine, unprivileged -------------------------------------------------------------

UNPRIVILEGED_READ = """
import json, logging, sys
from host_pm_exporter.hostfs import HostFS
from host_pm_exporter.readers.hwsleep import read_sleep_evidence, hw_sleep_summary
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(message)s")
for _ in range(3):
    facts = read_sleep_evidence(HostFS())
print(json.dumps({"denied": facts.fadt_denied, "flag": facts.low_power_s0, "errors": facts.errors,
                  "summary": hw_sleep_summary(facts)}))
"""


def test_this_machine_read_as_nobody_leaves_the_fadt_out_and_says_so_once() -> None:
    """The real /sys as an unprivileged exporter sees it: the FADT (mode 0400 root) is
    left out with one warning, nothing fails; as root, the flag is read."""
    need_root()
    setpriv = need_tool("setpriv", "util-linux")
    facp = Path("/sys/firmware/acpi/tables/FACP")
    run = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                          UNPRIVILEGED_READ], capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    got = json.loads(run.stdout)
    assert got["errors"] == {}
    assert got["flag"] is None
    warnings = [line for line in run.stderr.splitlines() if line.startswith("WARNING") and "FADT" in line]
    if facp.exists():
        assert got["denied"] is True
        assert len(warnings) == 1, run.stderr
        as_root = read_sleep_evidence(HostFS())
        assert as_root.low_power_s0 is not None
        assert as_root.low_power_s0 == bool(parse_fadt_flags(facp.read_bytes()) & LOW_POWER_S0_IDLE_CAPABLE)
    else:  # no ACPI: nothing to deny
        assert got["denied"] is False
        assert warnings == []
