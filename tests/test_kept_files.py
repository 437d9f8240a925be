"""Kernel attribute files kept open between readings and read again in place
(`hostfs.KeptFiles`), on the real sysfs and procfs of this machine: a kept file shows
what the kernel says now (a swap file switched on, a host name changed), a removed node
is found absent, a renamed one is never kept, fixture files are never kept, two
readers never share an offset, and the cap holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from host_pm_exporter.hostfs import HostFS, KeptFiles
from tests.conftest import need, need_root, need_tool

EXPORTER = str(Path(__file__).resolve().parents[1] / "exporter")


def run_child(script: str, *unshare: str) -> dict[str, object]:
    """`script` in a Python child under `unshare` (new namespaces: nothing it does is
    seen by this host); its last line of output is the JSON it prints."""
    need_root()
    env = {**os.environ, "PYTHONPATH": EXPORTER}
    done = subprocess.run(
        ["unshare", *unshare, sys.executable, "-c", textwrap.dedent(script)],
        check=False, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_kernel_files_are_kept_and_read_afresh_each_time() -> None:
    fs = HostFS(keep=64)
    first = fs.read("/proc/sys/kernel/osrelease")
    assert first is not None
    kept = fs.kept
    assert kept is not None
    fd = kept.kept("/proc/sys/kernel/osrelease")
    assert fd is not None, "a procfs sysctl file is kept"
    assert fs.read("/proc/sys/kernel/osrelease") == first == Path("/proc/sys/kernel/osrelease").read_text()
    assert kept.kept("/proc/sys/kernel/osrelease") == fd, "the same descriptor, read again in place"
    # a file of many pages (procfs's seq_file stops at record boundaries) comes whole
    with fs.directory("/proc") as proc:
        for _ in range(3):
            text = proc.read("cpuinfo")
            assert text is not None
            assert text.count("processor\t:") == Path("/proc/cpuinfo").read_text().count("processor\t:")
            assert text.endswith("\n\n")
    assert kept.kept("/proc/cpuinfo") is not None
    fs.close()
    assert len(kept) == 0


def test_a_swap_file_switched_on_shows_through_the_kept_proc_swaps(tmp_path: Path) -> None:
    need_root()
    swapon, swapoff, mkswap = (need_tool(t, "util-linux") for t in ("swapon", "swapoff", "mkswap"))
    fs = HostFS(keep=8)
    before = fs.read("/proc/swaps")
    assert before is not None
    assert fs.kept is not None
    assert fs.kept.kept("/proc/swaps") is not None
    was = before.encode()
    swap = tmp_path / "swap"
    swap.write_bytes(bytes(1 << 20))
    swap.chmod(0o600)
    subprocess.run([mkswap, str(swap)], check=True, capture_output=True)
    on = subprocess.run([swapon, str(swap)], check=False, capture_output=True, text=True)
    need(on.returncode == 0, f"swapon of a swap file on {tmp_path}: {on.stderr.strip()}")
    try:
        # a reading that asks whether /proc/swaps still reads as it did is told no
        assert not fs.read_same([("/proc/swaps", was)])
        during = fs.read("/proc/swaps")
        assert during is not None
        assert str(swap) in during, during
        assert fs.read_same([("/proc/swaps", during.encode())])
    finally:
        subprocess.run([swapoff, str(swap)], check=True)
    assert not fs.read_same([("/proc/swaps", during.encode())])
    after = fs.read("/proc/swaps")
    assert after is not None
    assert str(swap) not in after
    assert fs.kept.kept("/proc/swaps") is not None, "one descriptor all along"
    fs.close()


def test_a_long_seq_file_is_compared_whole_in_place() -> None:
    """/proc/kallsyms: megabytes of records, the same while no module loads; read again
    in place, it reads the same, and a byte more or less is not the same."""
    need_root()  # the addresses are zero for others, which is as stable
    fs = HostFS(keep=8)
    was = fs.read_bytes("/proc/kallsyms")
    assert was is not None
    assert len(was) > 64 << 10
    assert fs.kept is not None
    assert "/proc/kallsyms" in fs.kept
    assert fs.read_same([("/proc/kallsyms", was)])
    assert not fs.read_same([("/proc/kallsyms", was + b"x")])
    assert not fs.read_same([("/proc/kallsyms", was[:-1])])
    assert fs.read_same([("/proc/kallsyms", was)])
    assert "/proc/kallsyms" in fs.kept
    unkept = HostFS()  # the same, opened afresh
    assert unkept.read_same([("/proc/kallsyms", was)])
    assert not unkept.read_same([("/proc/kallsyms", was[: len(was) // 2])])
    fs.close()


def test_a_kept_file_another_reading_holds_is_read_afresh() -> None:
    """Two readings at once (a scrape and the status page): a file the other one is
    reading in place is opened by this one, never a failure."""
    fs = HostFS(keep=8)
    was = fs.read_bytes("/proc/sys/kernel/osrelease")
    assert was is not None
    assert fs.kept is not None
    fd = fs.kept._fds.pop("/proc/sys/kernel/osrelease")  # as another reading takes it
    try:
        assert fs.kept.reads("/proc/sys/kernel/osrelease", was, False) is None
        assert fs.read_same([("/proc/sys/kernel/osrelease", was)])
        assert not fs.read_same([("/proc/sys/kernel/osrelease", was + b"x")])
    finally:
        os.close(fd)
    fs.close()


def test_a_host_name_changed_shows_through_the_kept_sysctl() -> None:
    result = run_child(
        """
        import json, socket
        from host_pm_exporter.hostfs import HostFS
        fs = HostFS(keep=8)
        path = "/proc/sys/kernel/hostname"
        before = fs.read(path)
        fd = fs.kept.kept(path)
        socket.sethostname("kept-files-test")
        print(json.dumps({"before": before, "after": fs.read(path), "same_fd": fs.kept.kept(path) == fd,
                          "kept": fd is not None}))
        """,
        "-u",
    )
    assert result["kept"] is True
    assert result["after"] == "kept-files-test\n"
    assert result["before"] != result["after"]
    assert result["same_fd"] is True


def test_a_renamed_network_device_is_why_only_fixed_trees_are_kept() -> None:
    """In a network namespace of its own, with its own sysfs: a veth read through
    class/net or devices/virtual is never kept.  A keeper told to keep that tree shows
    the hazard: after a rename its descriptor still reads the device, while the path
    names nothing; after the device is removed the descriptor reads ENODEV and the
    file is found absent."""
    need_tool("ip", "iproute2")
    result = run_child(
        """
        import errno, json, os, subprocess, tempfile
        from host_pm_exporter.hostfs import HostFS, KeptFiles
        root = tempfile.mkdtemp()
        subprocess.run(["mount", "-t", "sysfs", "sysfs", root], check=True)
        subprocess.run(["ip", "link", "add", "kept-a", "type", "veth", "peer", "name", "kept-b"], check=True)
        out = {}
        fs = HostFS(sysfs=root, keep=64)
        via_class = f"{root}/class/net/kept-a/ifindex"
        device = f"{root}/devices/virtual/net/kept-a/ifindex"
        out["class"] = fs.read(via_class)
        out["device"] = fs.read(device)
        out["kept_by_default"] = len(fs.kept)
        risky = HostFS(sysfs=root)
        risky.kept = KeptFiles(64, root + "/", "/proc/", fixed=("devices/virtual/net/",))
        risky.read(device)
        fd = risky.kept.kept(device)
        out["risky_kept"] = fd is not None
        subprocess.run(["ip", "link", "set", "kept-a", "name", "kept-c"], check=True)
        out["path_after_rename"] = fs.read(device)
        out["old_fd_after_rename"] = risky.read(device)
        subprocess.run(["ip", "link", "del", "kept-c"], check=True)
        try:
            os.pread(fd, 64, 0)
            out["enodev"] = False
        except OSError as err:
            out["enodev"] = err.errno == errno.ENODEV
        out["after_removal"] = risky.read(device)
        out["risky_kept_after"] = len(risky.kept)
        print(json.dumps(out))
        """,
        "-m",
        "-n",
    )
    assert result["class"] == result["device"] is not None
    assert result["kept_by_default"] == 0, "neither class/ nor devices/virtual is a fixed tree"
    assert result["risky_kept"] is True
    assert result["path_after_rename"] is None, "the old name is gone"
    assert result["old_fd_after_rename"] == result["device"], "the hazard: a kept descriptor follows the rename"
    assert result["enodev"] is True
    assert result["after_removal"] is None, "ENODEV: the descriptor is dropped and the path found absent"
    assert result["risky_kept_after"] == 0


def test_fixture_files_are_never_kept(tmp_path: Path) -> None:
    (tmp_path / "power").mkdir()
    state = tmp_path / "power" / "state"
    state.write_text("freeze mem\n")
    fs = HostFS(str(tmp_path), str(tmp_path), str(tmp_path), keep=64)
    assert fs.read(str(state)) == "freeze mem\n"
    replaced = tmp_path / "power" / "state.new"
    replaced.write_text("freeze\n")
    replaced.replace(state)  # a new file under the old name: only a fresh open sees it
    assert fs.read(str(state)) == "freeze\n"
    with fs.directory(str(tmp_path / "power")) as power:
        assert power.read("state") == "freeze\n"
    assert fs.kept is not None
    assert len(fs.kept) == 0, "a regular file of a fixture tree is never kept"


def test_the_cap_holds_and_the_rest_are_opened_each_time() -> None:
    fs = HostFS(keep=2)
    names = ["online", "possible", "present", "offline", "isolated"]
    with fs.directory("/sys/devices/system/cpu") as cpu:
        first = [cpu.read(name) for name in names]
        again = [cpu.read(name) for name in names]
    assert first == again == [Path("/sys/devices/system/cpu", n).read_text() for n in names]
    assert fs.kept is not None
    assert len(fs.kept) == 2
    fs.close()


def test_moving_proc_directories_are_not_kept() -> None:
    kept = KeptFiles(64, "/sys/", "/proc/")
    device = os.stat("/proc/self/stat").st_dev
    assert kept.keeps("/proc/meminfo", device)
    assert kept.keeps("/proc/sys/kernel/osrelease", device)
    for moving in ("/proc/self/stat", "/proc/thread-self/stat", f"/proc/{os.getpid()}/stat", "/proc/net/dev"):
        assert not kept.keeps(moving, device), moving
    sysfs = os.stat("/sys/power").st_dev
    assert kept.keeps("/sys/power/state", sysfs)
    for moving in ("/sys/class/net/lo/operstate", "/sys/bus/cpu/devices/cpu0/online", "/sys/devices/pci0000:00/x"):
        assert not kept.keeps(moving, sysfs), moving
    assert not kept.keeps("/etc/machine-id", os.stat("/etc/machine-id").st_dev)


def test_two_readers_at_once_never_share_an_offset() -> None:
    """A kept file being read is taken out of the table: a reader in another thread
    opens its own, so neither gets half of one generation and half of another."""
    fs = HostFS(keep=64)
    processors = Path("/proc/cpuinfo").read_text().count("processor\t:")
    bad: list[str] = []

    def read() -> None:
        for _ in range(300):
            text = fs.read("/proc/cpuinfo")
            if text is None or text.count("processor\t:") != processors or not text.endswith("\n\n"):
                bad.append(repr(text)[:200])

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not bad
    assert fs.kept is not None
    assert len(fs.kept) == 1
    fs.close()


@pytest.mark.parametrize("keep", [0, 64])
def test_a_reading_is_the_same_with_files_kept_or_not(keep: int) -> None:
    from host_pm_exporter.cli import parse_config
    from host_pm_exporter.reading import build_snapshot

    config = parse_config(["--pm.probes=kernel", f"--path.kept-files={keep}"])
    fresh = parse_config(["--pm.probes=kernel", "--path.kept-files=0"])
    assert (config.snapshot.fs.kept is None) == (keep == 0)
    for _ in range(2):  # the second reading reads the kept files in place
        ours = build_snapshot(config.snapshot)
        theirs = build_snapshot(fresh.snapshot)
        for name in ("power", "topology", "cache", "idle"):
            assert ours.sections[name].ok == theirs.sections[name].ok
            assert ours.sections[name].data == theirs.sections[name].data, name
    if keep:
        assert config.snapshot.fs.kept is not None
        assert len(config.snapshot.fs.kept) > 10
