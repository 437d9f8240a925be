"""--web.config.file end to end: the installed exporter serving TLS, client certificates
and bcrypt basic auth to real clients (curl and Python's ssl), with certificates this
test makes, and a certificate rotated without a restart."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.conftest import exporter_command, fixture_args, need_tool

BASE = [*fixture_args("server-s3"), "--pm.probes=kernel"]


def openssl(*args: str) -> None:
    subprocess.run([need_tool("openssl", "openssl"), *args], check=True, capture_output=True)


def make_cert(d: Path, name: str, ca: str | None, cn: str, server: bool = True) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
            "-subj", f"/CN={cn}")  # fmt: skip
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    if ca is None:
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-signkey", str(d / f"{name}.key"),
                "-out", str(d / f"{name}.crt"), "-days", "2", "-extfile", str(ext))  # fmt: skip
    else:
        openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / f"{ca}.crt"), "-CAkey",
                str(d / f"{ca}.key"), "-CAcreateserial", "-out", str(d / f"{name}.crt"), "-days", "2",
                "-extfile", str(ext))  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
            "-days", "2", "-subj", "/CN=test CA")  # fmt: skip
    make_cert(d, "server", "ca", "server one")
    make_cert(d, "server2", "ca", "server two")
    make_cert(d, "client", "ca", "prometheus", server=False)
    return d


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need_tool("curl", "curl"), "-s", "-o", "/dev/null", "-w", "%{http_code}", *args],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip


def config(tmp_path: Path, pki: Path, body: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(body.replace("PKI", str(pki)))
    return path


SERVER_TLS = "tls_server_config:\n  cert_file: PKI/server.crt\n  key_file: PKI/server.key\n"


def test_tls_with_a_minimum_version(pki: Path, tmp_path: Path, exporter: Any) -> None:
    web = config(tmp_path, pki, SERVER_TLS + "  min_version: TLS13\n")
    exp = exporter([*BASE, f"--web.config.file={web}"])
    url = f"https://127.0.0.1:{exp.port}/metrics"
    assert curl("--cacert", str(pki / "ca.crt"), url).stdout == "200"
    assert curl("--cacert", str(pki / "ca.crt"), "--tls-max", "1.2", url).stdout == "000", "TLS 1.2 refused"
    assert curl("http://127.0.0.1:" + str(exp.port) + "/metrics").stdout in ("000", "400")
    client = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as sock, pytest.raises(ssl.SSLError):
        client.wrap_socket(sock, server_hostname="127.0.0.1")


def test_tls12_minimum_refuses_tls11(pki: Path, tmp_path: Path, exporter: Any) -> None:
    web = config(tmp_path, pki, SERVER_TLS)
    exp = exporter([*BASE, f"--web.config.file={web}"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(str(pki / "ca.crt"))
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1: the server must say no
    client.minimum_version = ssl.TLSVersion.TLSv1
    client.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as sock, pytest.raises(ssl.SSLError):
        client.wrap_socket(sock, server_hostname="127.0.0.1")
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", exp.port), timeout=5) as sock,
        client.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_mtls_refuses_a_client_without_a_certificate(pki: Path, tmp_path: Path, exporter: Any) -> None:
    web = config(tmp_path, pki, SERVER_TLS + "  client_auth_type: RequireAndVerifyClientCert\n"
                 "  client_ca_file: PKI/ca.crt\n")  # fmt: skip
    exp = exporter([*BASE, f"--web.config.file={web}"])
    url = f"https://127.0.0.1:{exp.port}/metrics"
    assert curl("--cacert", str(pki / "ca.crt"), url).stdout == "000"
    with_cert = curl("--cacert", str(pki / "ca.crt"), "--cert", str(pki / "client.crt"), "--key",
                     str(pki / "client.key"), url)  # fmt: skip
    assert with_cert.stdout == "200"


def test_basic_auth_with_a_bcrypt_hash(pki: Path, tmp_path: Path, exporter: Any) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = config(tmp_path, pki, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    exp = exporter([*BASE, f"--web.config.file={web}"])
    url = f"http://127.0.0.1:{exp.port}/metrics"
    assert curl("-u", "prometheus:s3cret", url).stdout == "200"
    assert curl("-u", "prometheus:wrong", url).stdout == "401"
    assert curl("-u", "nobody:s3cret", url).stdout == "401"
    status, headers, body = exp.get("/metrics")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic")
    assert b"host_" not in body


def peer_cn(port: int, pki: Path) -> str:
    client = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        client.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        cert = tls.getpeercert()
    assert cert is not None
    subject: Any = cert["subject"]
    names = [value for rdn in subject for key, value in rdn if key == "commonName"]
    return str(names[0])


def test_a_rotated_certificate_is_served_without_a_restart(pki: Path, tmp_path: Path, exporter: Any) -> None:
    for name in ("crt", "key"):
        (tmp_path / f"tls.{name}").write_bytes((pki / f"server.{name}").read_bytes())
    web = config(
        tmp_path, pki, f"tls_server_config:\n  cert_file: {tmp_path}/tls.crt\n  key_file: {tmp_path}/tls.key\n"
    )
    exp = exporter([*BASE, f"--web.config.file={web}"])
    assert peer_cn(exp.port, pki) == "server one"
    for name in ("crt", "key"):
        (tmp_path / f"tls.{name}").write_bytes((pki / f"server2.{name}").read_bytes())
    deadline = time.monotonic() + 5
    while peer_cn(exp.port, pki) != "server two" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert peer_cn(exp.port, pki) == "server two"
    assert exp.proc.poll() is None


@pytest.mark.parametrize(
    "content",
    [
        "tls_server_config:\n  cert_file: /nonexistent.crt\n",  # a missing certificate
        'tls_server_config:\n  cert_file: "a\\0b"\n  key_file: x\n',  # a NUL in a path
    ],
    ids=["missing-certificate", "nul-in-a-path"],
)
def test_a_bad_web_config_refuses_start_with_one_line_not_a_traceback(tmp_path: Path, content: str) -> None:
    web = tmp_path / "web.yml"
    web.write_text(content)
    cmd = [*exporter_command(), *BASE, f"--web.config.file={web}", "--web.listen-address=127.0.0.1:0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "web config" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_revoked_user_is_refused_on_a_kept_alive_connection(pki: Path, tmp_path: Path, exporter: Any) -> None:
    import base64
    import http.client

    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = config(tmp_path, pki, f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    exp = exporter([*BASE, f"--web.config.file={web}"])
    auth = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
    conn = http.client.HTTPConnection("127.0.0.1", exp.port, timeout=10)
    try:
        conn.request("GET", "/healthz", headers=auth)
        first = conn.getresponse()
        first.read()
        assert first.status == 200
        other = bcrypt.hashpw(b"other", bcrypt.gensalt(rounds=4)).decode()
        web.write_text(f"basic_auth_users:\n  prometheus: '{other}'\n")
        time.sleep(1.2)  # the config is checked at most once a second
        conn.request("GET", "/healthz", headers=auth)
        second = conn.getresponse()
        second.read()
        assert second.status == 401
    finally:
        conn.close()
