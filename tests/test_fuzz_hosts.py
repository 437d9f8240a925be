"""Property-based fuzz of host trees (hypothesis): spoil any files of a real-shaped host
with random bytes, truncation, huge content, FIFOs, symlink loops, directories where
files belong, or unreadable modes, and scrape it.  No exception escapes, every scrape is
valid exposition (promtool checks a sample), and spoiling never makes a sleep state
supported or ready that was not.

CI runs HPM_FUZZ_EXAMPLES (default 1,000) examples; a long profile by hand:
``HPM_FUZZ_EXAMPLES=10000 .venv/bin/pytest tests/test_fuzz_hosts.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, need_tool, samples, scrape
from tests.test_e2e import normalise

EXAMPLES = int(os.environ.get("HPM_FUZZ_EXAMPLES", "1000"))
CPUINFO = "".join(
    f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
    f"model name\t: Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz\nstepping\t: 4\nmicrocode\t: 0x2006e05\n"
    f"cpu MHz\t\t: 2600.000\nphysical id\t: 0\ncore id\t\t: {n // 2}\n"
    f"flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep lm vmx avx avx2 hypervisor\n\n"
    for n in range(4)
)


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    """server-s3 (power, swap, wake, cpufreq, cpuidle) with CPU identity and topology."""
    top = Path(tempfile.mkdtemp(prefix="host-pm-fuzz-"))
    root = top / "host"
    shutil.copytree(FIXTURES / "server-s3", root, symlinks=True)
    (root / "proc/cpuinfo").write_text(CPUINFO)
    for cpu in range(4):
        topo = root / f"sys/devices/system/cpu/cpu{cpu}/topology"
        topo.mkdir(parents=True, exist_ok=True)
        (topo / "package_cpus_list").write_text("0-3\n")
        (topo / "core_cpus_list").write_text(f"{cpu - cpu % 2}-{cpu - cpu % 2 + 1}\n")
        cache = root / f"sys/devices/system/cpu/cpu{cpu}/cache/index0"
        cache.mkdir(parents=True, exist_ok=True)
        for name, text in (("level", "1"), ("type", "Data"), ("size", "32K"), ("shared_cpu_list", str(cpu))):
            (cache / name).write_text(text + "\n")
    node = root / "sys/devices/system/node/node0"
    node.mkdir(parents=True, exist_ok=True)
    (root / "sys/devices/system/node/online").write_text("0\n")
    (node / "cpulist").write_text("0-3\n")
    (node / "meminfo").write_text("Node 0 MemTotal:       16384 kB\n")
    yield root
    shutil.rmtree(top)


def files_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def ones(text: str) -> set[str]:
    return {k for k, v in samples(text).items() if k.startswith(("host_pm_supported{", "host_pm_ready{")) and v == 1}


SPOILS = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=40)),
    st.tuples(st.just("huge"), st.integers(min_value=70_000, max_value=300_000)),
    st.tuples(st.sampled_from(["fifo", "loop", "dir", "unreadable", "gone"]), st.none()),
)


def spoil(root: Path, rel: str, how: str, arg: object) -> None:
    path = root / rel
    if how == "bytes":
        assert isinstance(arg, bytes)
        path.write_bytes(arg)
    elif how == "truncate":
        assert isinstance(arg, int)
        path.write_bytes(path.read_bytes()[:arg])
    elif how == "huge":
        assert isinstance(arg, int)
        path.write_bytes(b"0-3," * (arg // 4))
    elif how == "unreadable":
        path.chmod(0)
    else:
        path.unlink()
        if how == "fifo":
            os.mkfifo(path)
        elif how == "loop":
            os.symlink(path.name, path)
        elif how == "dir":
            path.mkdir()


@pytest.fixture(scope="module")
def sampled() -> Iterator[list[str]]:
    """Scrapes kept for promtool, checked once at the end of the module."""
    kept: list[str] = []
    yield kept
    promtool = need_tool("promtool", "prometheus")
    for text in kept:
        result = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_spoiled_hosts_scrape_cleanly(base: Path, sampled: list[str]) -> None:
    originals = files_of(base)
    before = ones(scrape(base))
    pristine = normalise(scrape(base))
    assert 'host_pm_supported{state="S3"}' in before
    counter = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.lists(st.tuples(st.sampled_from(originals), SPOILS), min_size=1, max_size=4, unique_by=lambda t: t[0]))
    def check(changes: list[tuple[str, tuple[str, object]]]) -> None:
        saved = {rel: ((base / rel).read_bytes(), (base / rel).stat().st_mode) for rel, _ in changes}
        try:
            for rel, (how, arg) in changes:
                spoil(base, rel, how, arg)
            text = scrape(base)  # must not raise
            assert text.endswith("\n")
            assert ones(text) <= before, f"spoiling {changes} made something supported or ready"
            counter[0] += 1
            if counter[0] % 100 == 1:
                sampled.append(text)
        finally:
            for rel, (data, mode) in saved.items():  # the base tree as it was, for the next example
                path = base / rel
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                elif path.exists() or path.is_symlink():
                    path.unlink()
                path.write_bytes(data)
                path.chmod(mode)

    check()
    assert counter[0] >= min(EXAMPLES, 100)
    assert normalise(scrape(base)) == pristine, "every example restored the tree"
