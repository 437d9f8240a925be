"""The cases of deploy/prometheus/rules.test.yml, written as code: the series of hosts
at rest, the events, and at each check time every alert, firing or silent, with the
labels and texts it must have.  The texts come from the rule file's annotations, with
the target's labels put in.

    python -m tests.rules_cases --write   # regenerate deploy/prometheus/rules.test.yml

tests/test_deploy.py keeps the file equal to what this module writes and runs it with
promtool.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
TEST_FILE = RULES / "rules.test.yml"
JOB = "host-pm-exporter"
HEADER = """\
# promtool test rules deploy/prometheus/rules.test.yml
# Written by tests/rules_cases.py (python -m tests.rules_cases --write): edit that, not this.
# Each test evaluates every alert at each check time: those named fire with exactly
# these labels (the target's routing labels kept) and texts; every other one is silent.
# Then the recording rules.
"""
Labels = dict[str, str]
Series = dict[str, str]


def alerting_rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((RULES / "alerting.rules.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


RULE = alerting_rules()


def selector(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def render(text: str, labels: Labels, value: str, listing: str | None) -> str:
    """The annotation as Prometheus renders it: $labels and $value put in; the one
    `range ... query` (the pool's fingerprints) replaced by `listing`."""
    if listing is not None:
        text = re.sub(r"\{\{ range .*?\{\{ end \}\}", lambda _m: listing, text, flags=re.DOTALL)

    def put(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels.") :], "")
        if expr == "$value":
            return value
        raise ValueError(f"a template this module cannot render: {expr}")

    return re.sub(r"\{\{(.*?)\}\}", put, text)


def fires(alert: str, labels: Labels, value: str = "", listing: str | None = None) -> dict[str, Any]:
    rule = RULE[alert]
    return {
        "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
        "exp_annotations": {k: render(v, labels, value, listing) for k, v in rule["annotations"].items()},
    }


def host(instance: str, pool: str | None = None, saving: bool = False, team: str | None = None) -> Labels:
    labels = {"job": JOB, "instance": instance}
    if pool:
        labels["pool"] = pool
    if saving:
        labels["power_saving"] = "true"
    if team:
        labels["team"] = team
    return labels


def series(name: str, labels: Labels, values: str) -> Series:
    return {"series": name + selector(labels), "values": values}


def at_rest(h: Labels, s3: bool = True, default: str = "S3", s4_ready: bool = True, fp: str = "aaaa") -> list[Series]:
    """A host's series for three hours at rest: S3 (unless `s3` is False) entered by
    `default`, S4 ready or not enough swap, woken by something, kernel and logind
    answering, pm-utils absent, CPU fingerprint `fp`."""
    yes, no = "1x180", "0x180"
    out = [
        series("up", h, yes),
        series("host_pm_supported", {**h, "state": "S3"}, yes if s3 else no),
        series("host_pm_supported", {**h, "state": "S4"}, yes),
        series("host_pm_ready", {**h, "state": "S3"}, yes if s3 else no),
        series("host_pm_ready", {**h, "state": "S4"}, yes if s4_ready else no),
        series("host_pm_wake_capable", h, yes),
        series("host_pm_probe_tool_present", {**h, "probe": "pm-utils"}, no),
        series("host_cpu_features_info", {**h, "fingerprint": fp}, yes),
    ]
    if not s4_ready:
        out.append(series("host_pm_not_ready_reason_info", {**h, "state": "S4", "reason": "not_enough_swap"}, yes))
    out.append(series("host_pm_default_suspend_state", {**h, "state": default}, yes))
    for probe in ("kernel", "logind"):
        out.append(series("host_pm_probe_success", {**h, "probe": probe}, yes))
        out.append(series("host_pm_probe_tool_present", {**h, "probe": probe}, yes))
        for operation in ("suspend", "hibernate"):
            out.append(series("host_pm_probe_supported", {**h, "probe": probe, "operation": operation}, yes))
    return out


def change(all_series: list[Series], name: str, labels: Labels, values: str) -> None:
    """An event: the values of one series, by name and labels."""
    wanted = name + selector(labels)
    for one in all_series:
        if one["series"] == wanted:
            one["values"] = values
            return
    raise KeyError(wanted)


def check(at: str, firing: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every alert at time `at`: those in `firing` as given, every other one silent."""
    unknown = set(firing) - set(RULE)
    if unknown:
        raise KeyError(unknown)
    return [{"eval_time": at, "alertname": alert, "exp_alerts": firing.get(alert, [])} for alert in RULE]


# Hosts of the cases: power-saving servers, a small-swap database server and an
# s2idle-only laptop outside the policy, two hosts with no pool.
A = host("s3-a:8731", "edge", True, "power")
B = host("s3-b:8731", "edge", True, "power")
DB = host("db:8731", "database", False, "dba")
LAPTOP = host("laptop:8731", "desk")
OTHER_JOB = {"job": "node", "instance": "c:9100"}


def fleet_cases() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = []

    def case(name: str, input_series: list[Series], *checks: list[dict[str, Any]]) -> None:
        tests.append({"name": name, "interval": "1m", "input_series": input_series,
                      "alert_rule_test": [c for one in checks for c in one]})  # fmt: skip

    ss = at_rest(A) + at_rest(B) + at_rest(DB, s4_ready=False, fp="dddd")
    ss += at_rest(LAPTOP, s3=False, default="S2idle", fp="llll")
    ss += at_rest(host("lonely-1:8731"), fp="n1n1") + at_rest(host("lonely-2:8731"), fp="n2n2")
    case("start-up: a healthy fleet fires nothing (not-ready S4, s2idle and odd CPUs off the policy and pools)",
         ss, check("5m", {}), check("2h", {}))  # fmt: skip

    ss = at_rest(A) + at_rest(B) + [series("up", OTHER_JOB, "0x60")]
    change(ss, "up", A, "1x5 0x60")
    case("exporter down fires after 5m with the target's routing labels, not before, not for other jobs",
         ss, check("8m", {}), check("15m", {"HostPmExporterDown": [fires("HostPmExporterDown", A)]}))  # fmt: skip

    missing = fires("HostPmExporterTargetsMissing", {"job": JOB}, "1")
    case("no target of the job at all fires HostPmExporterTargetsMissing",
         [series("up", OTHER_JOB, "1x30")], check("5m", {}),
         check("15m", {"HostPmExporterTargetsMissing": [missing]}))  # fmt: skip

    def pod(i: int) -> Labels:
        return {"job": JOB, "instance": f"node-{i}", "namespace": "monitoring", "pod": f"host-pm-exporter-{i}",
                "team": "platform"}  # fmt: skip

    ksm = {"job": "kube-state-metrics", "instance": "ksm:8080", "namespace": "monitoring",
           "daemonset": "host-pm-exporter"}  # fmt: skip
    desired = series("kube_daemonset_status_desired_number_scheduled", ksm, "3x60")
    pods_missing = fires("HostPmExporterPodsMissing", ksm, "3")
    ss = [desired, series("up", pod(1), "1x60"), series("up", pod(2), "1x60"), series("up", pod(3), "1x5 _x55")]
    case("Kubernetes: a node's target that vanishes (no up == 0) fires HostPmExporterPodsMissing; "
         "exporter down does not",
         ss, check("8m", {}), check("25m", {"HostPmExporterPodsMissing": [pods_missing]}))  # fmt: skip
    case("Kubernetes: no target at all also fires, with the DaemonSet's desired count",
         [dict(desired), series("up", OTHER_JOB, "1x60")],
         check("20m", {"HostPmExporterPodsMissing": [pods_missing],
                       "HostPmExporterTargetsMissing": [missing]}))  # fmt: skip

    ss = at_rest(A) + at_rest(DB, s4_ready=False, fp="dddd")
    for h in (A, DB):
        for name in ("host_pm_supported", "host_pm_ready"):
            change(ss, name, {**h, "state": "S3"}, "1x30 0x150")
    lost = {alert: [fires(alert, {**A, "state": "S3"})] for alert in ("HostSleepStateLost", "PowerSavingHostNoS3Ready")}
    case("S3 taken away: HostSleepStateLost and PowerSavingHostNoS3Ready on the power-saving host only",
         ss, check("35m", {}), check("50m", lost))  # fmt: skip

    ss = at_rest(A) + at_rest(B) + at_rest(DB, s4_ready=False, fp="dddd")
    for h in (A, DB):
        change(ss, "host_pm_default_suspend_state", {**h, "state": "S3"}, "1x30 _x150")
        ss.append(series("host_pm_default_suspend_state", {**h, "state": "S2idle"}, "_x30 1x150"))
    s2idle = fires("PowerSavingHostSuspendEntersS2idle", {**A, "state": "S2idle"})
    case("mem_sleep becomes [s2idle] deep: PowerSavingHostSuspendEntersS2idle on the power-saving host, nothing else",
         ss, check("40m", {}), check("50m", {"PowerSavingHostSuspendEntersS2idle": [s2idle]}))  # fmt: skip

    vm = host("vm:8731", "edge", True, "power")
    ss = at_rest(A) + at_rest(B) + at_rest(DB, s4_ready=False, fp="dddd") + at_rest(vm)
    # the VM's kernel does not offer S4: the reader still lists why it could not hibernate
    change(ss, "host_pm_supported", {**vm, "state": "S4"}, "0x180")
    change(ss, "host_pm_ready", {**vm, "state": "S4"}, "0x180")
    for reason in ("not_supported", "no_usable_swap"):
        ss.append(series("host_pm_not_ready_reason_info", {**vm, "state": "S4", "reason": reason}, "1x180"))
    change(ss, "host_pm_ready", {**A, "state": "S4"}, "1x30 0x150")
    reasons = ("not_enough_swap", "no_resume_target")
    for reason in reasons:
        ss.append(series("host_pm_not_ready_reason_info", {**A, "state": "S4", "reason": reason}, "_x30 1x150"))
    s4 = [fires("PowerSavingHostHibernationNotReady", {**A, "state": "S4", "reason": r}) for r in reasons]
    case("S4 not ready on a power-saving host fires once per reason; a host off the policy or without S4 does not",
         ss, check("40m", {}), check("50m", {"PowerSavingHostHibernationNotReady": s4}))  # fmt: skip

    ss = at_rest(A) + at_rest(DB, s4_ready=False, fp="dddd")
    for h in (A, DB):
        change(ss, "host_pm_wake_capable", h, "1x30 0x150")
    case("a power-saving host that nothing can wake fires; one off the policy does not",
         ss, check("40m", {}),
         check("50m", {"PowerSavingHostNoWakeSource": [fires("PowerSavingHostNoWakeSource", A)]}))  # fmt: skip

    ss = at_rest(A) + at_rest(DB, s4_ready=False, fp="dddd")
    change(ss, "host_pm_probe_success", {**DB, "probe": "logind"}, "1x30 0x150")
    case("a probe whose tool answers no more fires, on any host; an absent tool (pm-utils here) does not",
         ss, check("40m", {}),
         check("50m", {"HostPmProbeFailing": [fires("HostPmProbeFailing", {**DB, "probe": "logind"})]}))  # fmt: skip

    ss = at_rest(A) + at_rest(DB, s4_ready=False, fp="dddd")
    for h in (A, DB):
        change(ss, "host_pm_probe_supported", {**h, "probe": "logind", "operation": "hibernate"}, "1x30 0x150")
    disagree = fires("PowerSavingHostProbesDisagree", {**A, "operation": "hibernate"})
    case("probes that disagree on a power-saving host fire with its routing labels; off the policy they do not",
         ss, check("40m", {}), check("50m", {"PowerSavingHostProbesDisagree": [disagree]}))  # fmt: skip

    def pool_case(name: str, pool: str, fingerprints: list[str], firing: list[int],
                  unpooled: tuple[tuple[Labels, str], ...] = ()) -> None:  # fmt: skip
        hosts = [host(f"{pool}-{i}:8731", pool, False, "virt") for i in range(len(fingerprints))]
        ss = []
        for h, fp in [*zip(hosts, fingerprints), *unpooled]:
            ss += [series("up", h, "1x60"), series("host_cpu_features_info", {**h, "fingerprint": fp}, "1x60")]
        counts = {fp: fingerprints.count(fp) for fp in sorted(set(fingerprints))}
        listing = "".join(f"{fp} on {n} host(s); " for fp, n in counts.items())
        expected = [fires("HostCpuFingerprintSplitPool", {**hosts[i], "fingerprint": fingerprints[i]}, listing=listing)
                    for i in firing]  # fmt: skip
        case(name, ss, check("20m", {}), check("45m", {"HostCpuFingerprintSplitPool": expected} if expected else {}))

    pool_case("the odd host of a pool with a majority fires, the majority does not", "virt",
              ["aaaa", "aaaa", "bbbb"], [2])  # fmt: skip
    pool_case("a 2-host pool whose hosts differ: both fire", "pair", ["aaaa", "bbbb"], [0, 1])
    pool_case("a pool split three ways: every host fires, with the pool's count of each", "three",
              ["aaaa", "bbbb", "cccc"], [0, 1, 2])  # fmt: skip
    pool_case("a pool split 2:2:1: the two tied groups and the single fire (no largest group)", "tie",
              ["aaaa", "aaaa", "bbbb", "bbbb", "cccc"], [0, 1, 2, 3, 4])  # fmt: skip
    pool_case("hosts without a pool label are no pool: different fingerprints fire nothing", "one", ["aaaa"], [],
              ((host("free-1:8731"), "xxxx"), (host("free-2:8731"), "yyyy"),
               (host("free-3:8731", team="virt"), "zzzz")))  # fmt: skip
    return tests


def recording_cases() -> list[dict[str, Any]]:
    ready = [("a", "p", "1"), ("b", "p", "0"), ("c", "q", "1")]
    ss = [series("host_pm_ready", {"instance": i, "pool": p, "state": "S3"}, v) for i, p, v in ready]
    ss += [series("host_pm_supported", {"instance": i, "state": "S3"}, "1") for i in ("a", "b")]
    ss += [series("host_cpu_x86_64_level", {"instance": i, "pool": "p"}, v) for i, v in (("a", "4"), ("b", "3"))]
    ss += [series("host_cpu_features_info", {"instance": i, "pool": "p", "fingerprint": "f1"}, "1") for i in "ab"]

    def expect(expr: str, *samples: tuple[str, float]) -> dict[str, Any]:
        return {"expr": expr, "eval_time": 0, "exp_samples": [{"labels": expr + lab, "value": v} for lab, v in samples]}

    return [{"name": "recording rules", "interval": "1m", "input_series": ss, "promql_expr_test": [
        expect("state:host_pm_supported:hosts", ('{state="S3"}', 2)),
        expect("state:host_pm_ready:hosts", ('{state="S3"}', 2)),
        expect("fleet:host_pm_s3_ready:ratio", ("", 0.6666666666666666)),
        expect("pool:host_pm_s3_ready:ratio", ('{pool="p"}', 0.5), ('{pool="q"}', 1)),
        expect("pool:host_cpu_x86_64_level:min", ('{pool="p"}', 3)),
        expect("fingerprint:host_cpu_features_info:hosts", ('{fingerprint="f1"}', 2)),
    ]}]  # fmt: skip


def text() -> str:
    doc = {"rule_files": ["recording.rules.yml", "alerting.rules.yml"], "evaluation_interval": "1m",
           "tests": fleet_cases() + recording_cases()}  # fmt: skip
    return HEADER + yaml.safe_dump(doc, sort_keys=False, width=120)


if __name__ == "__main__" and "--write" in sys.argv:
    TEST_FILE.write_text(text())
