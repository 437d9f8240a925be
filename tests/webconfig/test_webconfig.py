"""The web config (exporter-toolkit's web-config.yml): what is read, what is refused and
why, real TLS handshakes against the context it builds (versions, client certificates,
cipher suites, certificate rotation without a restart), and basic auth with bcrypt.

The certificates are made at test time with the openssl CLI: a CA, two server
certificates for 127.0.0.1/localhost (the second one for rotation), a client certificate
from the CA and one from another CA."""

from __future__ import annotations

import base64
import contextlib
import hmac
import logging
import os
import queue
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bcrypt
import pytest

from host_pm_exporter.webconfig import (
    CIPHER_SUITES,
    Authenticator,
    Check,
    WebConfig,
    WebConfigError,
    WebConfigSource,
    load_web_config,
)
from tests.conftest import need

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The web config's own records (threads of other tests may log meanwhile)."""
    return [r for r in caplog.records if r.name == "host_pm_exporter.webconfig"]


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class PKI:
    ca: Pair
    server_one: Pair  # CN server-one, serial 0x1001
    server_two: Pair  # CN server-two-rotated, serial 0x2002
    client: Pair  # from the CA
    other_ca: Pair
    rogue_client: Pair  # from the other CA
    encrypted_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _make_ca(out: Path, cnf: Path, name: str) -> Pair:
    pair = Pair(out / f"{name}.crt", out / f"{name}.key")
    _openssl(
        "req", "-x509", "-config", cnf, "-extensions", "ca_ext", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", pair.key, "-out", pair.cert,
        "-days", "2", "-subj", f"/CN={name}",
    )  # fmt: skip
    return pair


def _make_leaf(out: Path, cnf: Path, ca: Pair, name: str, serial: int, ext: str) -> Pair:
    pair = Pair(out / f"{name}.crt", out / f"{name}.key")
    csr = out / f"{name}.csr"
    _openssl(
        "req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", pair.key, "-out", csr, "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", str(serial),
        "-days", "2", "-extfile", cnf, "-extensions", ext, "-out", pair.cert,
    )  # fmt: skip
    return pair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    need(shutil.which("openssl") is not None, "the openssl CLI is needed to make test certificates (package openssl)")
    out = tmp_path_factory.mktemp("pki")
    cnf = out / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF)
    ca = _make_ca(out, cnf, "test-ca")
    other = _make_ca(out, cnf, "other-ca")
    encrypted = out / "encrypted.key"
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256",
        "-pass", "pass:secret", "-out", encrypted,
    )  # fmt: skip
    return PKI(
        ca=ca,
        server_one=_make_leaf(out, cnf, ca, "server-one", 0x1001, "server_ext"),
        server_two=_make_leaf(out, cnf, ca, "server-two-rotated", 0x2002, "server_ext"),
        client=_make_leaf(out, cnf, ca, "client", 0x3003, "client_ext"),
        other_ca=other,
        rogue_client=_make_leaf(out, cnf, other, "rogue", 0x4004, "client_ext"),
        encrypted_key=encrypted,
    )


class Site:
    """A config directory: web.yml, server.crt/server.key (server-one at first), ca.crt."""

    def __init__(self, root: Path, pki: PKI) -> None:
        self.root = root
        self.pki = pki
        self.config = root / "web.yml"
        self.cert = root / "server.crt"
        self.key = root / "server.key"
        self.ca = root / "ca.crt"
        shutil.copyfile(pki.ca.cert, self.ca)
        self.install(pki.server_one)

    def write(self, text: str) -> str:
        self.config.write_text(text)
        return str(self.config)

    def install(self, pair: Pair, *, rename: bool = False) -> None:
        """Put `pair` in place: rewritten in place, or (rename) written aside and renamed
        over, as an atomic rotation does."""
        for src, dst in ((pair.cert, self.cert), (pair.key, self.key)):
            if rename:
                tmp = dst.with_suffix(".new")
                tmp.write_bytes(src.read_bytes())
                os.replace(tmp, dst)
            else:
                dst.write_bytes(src.read_bytes())


TLS = """\
tls_server_config:
  cert_file: server.crt
  key_file: server.key
"""
MTLS = (
    TLS
    + """\
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
"""
)


@pytest.fixture
def site(tmp_path: Path, pki: PKI) -> Site:
    return Site(tmp_path, pki)


def _hash(password: bytes, rounds: int = 4) -> str:
    return bcrypt.hashpw(password, bcrypt.gensalt(rounds=rounds)).decode()


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {"alice": _hash(b"wonderland"), "bob": _hash(b"builder", rounds=5)}


# -- a TLS server and client -----------------------------------------------------------------


class Server:
    """A plain ssl server on 127.0.0.1: wraps each accepted connection with the context
    `contexts` gives for it (as the exporter does), greets and closes with a close_notify
    (as the exporter does, so that a TLS 1.2 session may be resumed); each connection's
    outcome goes to `outcomes`."""

    def __init__(self, contexts: Callable[[], ssl.SSLContext | None]) -> None:
        self.contexts = contexts
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.outcomes: queue.Queue[tuple[str, str]] = queue.Queue()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                context = self.contexts()
                assert context is not None
                with context.wrap_socket(conn, server_side=True) as tls:
                    client = _common_name(tls.getpeercert())
                    tls.sendall(b"hello\n")
                    self.outcomes.put(("ok", client))
                    with contextlib.suppress(OSError):
                        tls.unwrap()
            except OSError as err:
                conn.close()
                self.outcomes.put(("error", str(err)))

    def outcome(self) -> tuple[str, str]:
        return self.outcomes.get(timeout=5)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.listener.close()
        self.thread.join(5)


@contextmanager
def serving(source: WebConfigSource) -> Iterator[Server]:
    assert source.tls_context() is not None
    server = Server(source.tls_context)
    try:
        yield server
    finally:
        server.close()


# A refusal: in the handshake, or (TLS 1.3, client certificates) as an alert on the first read.
REFUSED = (ssl.SSLError, ConnectionError)


@dataclass(frozen=True)
class Peer:
    cn: str
    serial: int
    version: str
    cipher: str


def connect(
    port: int,
    pki: PKI,
    *,
    client: Pair | None = None,
    server_hostname: str = "localhost",
    min_version: ssl.TLSVersion | None = None,
    max_version: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> Peer:
    """A TLS handshake from Python's ssl client, and the server's greeting read: raises
    when the server refuses (with TLS 1.3 a refused client certificate shows on the read)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca.cert)
    if client is not None:
        ctx.load_cert_chain(client.cert, client.key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with raw, ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
        greeting = tls.recv(16)
        if greeting != b"hello\n":
            raise ConnectionError(f"no greeting: {greeting!r}")
        cert = tls.getpeercert()
        version, cipher = tls.version(), tls.cipher()
        assert cert is not None
        assert version is not None
        assert cipher is not None
        return Peer(_common_name(cert), int(str(cert["serialNumber"]), 16), version, cipher[0])


def _common_name(cert: Any) -> str:
    """The subject's CN from getpeercert()'s dict, "" for none."""
    for rdn in cert.get("subject", ()) if cert else ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


# -- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# nothing configured\n", "---\n"])
def test_an_empty_file_is_plain_http_without_auth(site: Site, text: str) -> None:
    config = load_web_config(site.write(text))
    assert config.tls is None
    assert dict(config.users) == {}
    assert config.headers == ()
    assert config.client_auth == "NoClientCert"


def test_every_setting_is_read(site: Site, hashes: dict[str, str]) -> None:
    path = site.write(
        MTLS
        + f"""\
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
  prefer_server_cipher_suites: true
http_server_config:
  http2: true
  headers:
    Strict-Transport-Security: max-age=31536000
    X-Content-Type-Options: nosniff
basic_auth_users:
  alice: {hashes["alice"]}
  bob: '{hashes["bob"]}'
"""
    )
    config = load_web_config(path)
    assert isinstance(config.tls, ssl.SSLContext)
    assert config.tls.verify_mode == ssl.CERT_REQUIRED
    assert config.tls.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.tls.maximum_version == ssl.TLSVersion.TLSv1_3
    assert config.tls.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    tls12 = {c["name"] for c in config.tls.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"}
    assert config.client_auth == "RequireAndVerifyClientCert"
    assert config.headers == (("Strict-Transport-Security", "max-age=31536000"), ("X-Content-Type-Options", "nosniff"))
    assert dict(config.users) == {"alice": hashes["alice"].encode(), "bob": hashes["bob"].encode()}
    with pytest.raises(TypeError):
        config.users["eve"] = b"x"  # type: ignore[index]


def test_relative_paths_are_relative_to_the_config_file(
    site: Site, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = site.write(MTLS)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert load_web_config(path).tls is not None
    assert load_web_config(os.path.relpath(path)).tls is not None


def test_absolute_paths_are_taken_as_they_are(site: Site, pki: PKI) -> None:
    path = site.write(f"tls_server_config:\n  cert_file: {pki.server_two.cert}\n  key_file: {pki.server_two.key}\n")
    assert load_web_config(path).tls is not None


def test_a_null_tls_section_is_plain_http(site: Site) -> None:
    config = load_web_config(site.write("tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n"))
    assert config.tls is None
    assert not config.users


@pytest.mark.parametrize(
    ("client_auth", "mode"),
    [
        ("NoClientCert", ssl.CERT_NONE),
        ("RequestClientCert", ssl.CERT_OPTIONAL),
        ("RequireAnyClientCert", ssl.CERT_REQUIRED),
        ("VerifyClientCertIfGiven", ssl.CERT_OPTIONAL),
        ("RequireAndVerifyClientCert", ssl.CERT_REQUIRED),
    ],
)
def test_client_auth_types(site: Site, client_auth: str, mode: ssl.VerifyMode) -> None:
    config = load_web_config(site.write(TLS + f"  client_auth_type: {client_auth}\n  client_ca_file: ca.crt\n"))
    assert config.tls is not None
    assert config.tls.verify_mode == mode
    assert config.client_auth == client_auth


def test_no_client_auth_type_is_no_client_cert(site: Site) -> None:
    config = load_web_config(site.write(TLS))
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_NONE
    assert config.client_auth == "NoClientCert"


def test_a_client_ca_without_client_auth_is_loaded_and_unused(site: Site) -> None:
    config = load_web_config(site.write(TLS + "  client_ca_file: ca.crt\n"))
    assert config.tls is not None
    assert config.tls.verify_mode == ssl.CERT_NONE
    assert config.tls.cert_store_stats()["x509_ca"] == 1


def test_prefer_server_cipher_suites_false_clears_the_option(site: Site) -> None:
    config = load_web_config(site.write(TLS + "  prefer_server_cipher_suites: false\n"))
    assert config.tls is not None
    assert not config.tls.options & ssl.OP_CIPHER_SERVER_PREFERENCE


def test_tls13_suite_names_are_accepted_and_have_no_effect(site: Site) -> None:
    config = load_web_config(
        site.write(TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n")
    )
    assert config.tls is not None
    names = {c["name"] for c in config.tls.get_ciphers()}
    assert "ECDHE-ECDSA-AES256-GCM-SHA384" in names
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" not in names


@pytest.mark.parametrize("go_name", sorted(CIPHER_SUITES))
def test_every_cipher_suite_name_maps_to_an_openssl_suite(go_name: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.set_ciphers(CIPHER_SUITES[go_name])
    except ssl.SSLError:
        pytest.skip(f"{CIPHER_SUITES[go_name]} is not in this OpenSSL")
    tls12 = [c for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert [c["name"] for c in tls12] == [CIPHER_SUITES[go_name]]
    # Go's and OpenSSL's names are both names of the same IANA suite: the same pieces.
    assert ("GCM" in go_name) == ("GCM" in CIPHER_SUITES[go_name])
    assert ("ECDSA" in go_name) == ("ECDSA" in CIPHER_SUITES[go_name])
    assert ("CHACHA20" in go_name) == ("CHACHA20" in CIPHER_SUITES[go_name])
    assert ("AES_128" in go_name) == ("AES128" in CIPHER_SUITES[go_name])
    assert ("AES_256" in go_name) == ("AES256" in CIPHER_SUITES[go_name])
    assert ("RSA_WITH" in go_name) == ("RSA" in CIPHER_SUITES[go_name] or "ECDHE" not in CIPHER_SUITES[go_name])


BAD_CONFIGS = [
    ("- a\n- b\n", "must be a mapping, not a list"),
    ("just words\n", "must be a mapping, not a string"),
    ("tls_server_config: [\n", "not valid YAML"),
    ("a: b\n c: d\n", "not valid YAML"),
    ("tls_config: {}\n", "unknown key tls_config"),
    ("tls_server_config:\n  cert_fil: x\n", "unknown key tls_server_config.cert_fil"),
    ("http_server_config:\n  header: {}\n", "unknown key http_server_config.header"),
    (TLS + "  client_allowed_sans: [a]\n", "client_allowed_sans is not supported"),
    (TLS + "  curve_preferences: [X25519]\n", "curve_preferences is not supported"),
    ("tls_server_config:\n  cert: PEM\n", "cert is not supported"),
    ("basic_auth_users: {}\nbasic_auth_users: {}\n", "duplicate key 'basic_auth_users'"),
    ("tls_server_config: []\n", "tls_server_config must be a mapping, not a list"),
    ("tls_server_config: {}\n", "cert_file is required"),
    ("tls_server_config:\n  key_file: server.key\n", "cert_file is required"),
    ("tls_server_config:\n  cert_file: server.crt\n", "key_file is required"),
    ("tls_server_config:\n  cert_file: 5\n  key_file: server.key\n", "cert_file must be a string, not a number"),
    (TLS + "  client_auth_type: Always\n", "client_auth_type: unknown value 'Always'"),
    (TLS + "  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
    (TLS + "  client_auth_type: VerifyClientCertIfGiven\n", "needs client_ca_file"),
    (TLS + "  client_auth_type: RequestClientCert\n", "needs client_ca_file"),
    (TLS + "  client_auth_type: RequireAnyClientCert\n", "needs client_ca_file"),
    (TLS + "  min_version: TLS14\n", "min_version: unknown value 'TLS14'"),
    (TLS + "  max_version: tls12\n", "max_version: unknown value 'tls12'"),
    (TLS + "  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
    (TLS + "  cipher_suites: [TLS_ECDHE_RSA_WITH_RC4_128_SHA]\n", "unsupported cipher suite"),
    (TLS + "  cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256]\n", "unsupported cipher suite"),
    (TLS + "  cipher_suites: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n", "cipher_suites must be a list"),
    (TLS + "  cipher_suites: [1]\n", "is not a string"),
    (TLS + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "names no TLS 1.2 suite"),
    (TLS + "  prefer_server_cipher_suites: sometimes\n", "must be true or false"),
    ("http_server_config: 1\n", "http_server_config must be a mapping"),
    ("http_server_config:\n  http2: maybe\n", "http2 must be true or false"),
    ("http_server_config:\n  headers: [a]\n", "headers must be a mapping"),
    ("http_server_config:\n  headers:\n    Bad Name: x\n", "'Bad Name' is not a valid header name"),
    ("http_server_config:\n  headers:\n    'X-A:': x\n", "is not a valid header name"),
    ('http_server_config:\n  headers:\n    X-A: "a\\r\\nX-Injected: 1"\n', "printable ASCII on one line"),
    ('http_server_config:\n  headers:\n    X-A: "nul\\0"\n', "printable ASCII on one line"),
    ("http_server_config:\n  headers:\n    X-A: 1\n", "X-A must be a string, not a number"),
    ("http_server_config:\n  headers:\n    X-A: a\n    x-a: b\n", "x-a is given twice"),
    ("basic_auth_users: [alice]\n", "basic_auth_users must be a mapping"),
    ("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"),
    ("basic_auth_users:\n  alice:\n", "basic_auth_users.alice: not a bcrypt hash"),
    ("basic_auth_users:\n  alice: $2x$04$" + "a" * 53 + "\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  alice: $2b$99$" + "a" * 53 + "\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  alice: $2b$04$" + "a" * 52 + "\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  alice: $2b$04$" + "a" * 21 + "b" + "a" * 31 + "\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  'al:ice': $2b$04$" + "." * 53 + "\n", "contains ':'"),
    ("basic_auth_users:\n  123: $2b$04$" + "." * 53 + "\n", "user name 123 is not a string"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_configs_are_refused_in_one_line_naming_the_file(site: Site, text: str, message: str) -> None:
    path = site.write(text)
    with pytest.raises(WebConfigError) as caught:
        load_web_config(path)
    err = caught.value
    assert err.file == path
    assert str(err).startswith(f"{path}: ")
    assert message in str(err)
    assert "\n" not in str(err)


RESERVED = ["Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding", "Connection", "Date", "Server"]


@pytest.mark.parametrize("name", [*RESERVED, "WWW-Authenticate", "content-length", "TRANSFER-ENCODING", "server"])
def test_headers_the_server_sets_are_refused(site: Site, name: str) -> None:
    with pytest.raises(WebConfigError, match="set by the server"):
        load_web_config(site.write(f"http_server_config:\n  headers:\n    {name}: x\n"))


def test_a_file_that_is_not_utf8_is_refused(site: Site) -> None:
    site.config.write_bytes(b"basic_auth_users:\n  \xff\xfe: x\n")
    with pytest.raises(WebConfigError, match="not UTF-8"):
        load_web_config(str(site.config))


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yml")
    with pytest.raises(WebConfigError, match="cannot read: No such file") as caught:
        load_web_config(path)
    assert caught.value.file == path


def _bad_cert(site: Site) -> None:
    site.cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")


def _bad_key(site: Site) -> None:
    site.key.write_text("this is no key\n")


def _mismatched_key(site: Site) -> None:
    shutil.copyfile(site.pki.client.key, site.key)


def _encrypted_key(site: Site) -> None:
    shutil.copyfile(site.pki.encrypted_key, site.key)


def _no_cert(site: Site) -> None:
    site.cert.unlink()


def _no_key(site: Site) -> None:
    site.key.unlink()


def _cert_is_a_directory(site: Site) -> None:
    site.cert.unlink()
    site.cert.mkdir()


def _cert_is_a_fifo(site: Site) -> None:
    site.cert.unlink()
    os.mkfifo(site.cert)  # to open it would hang


def _no_ca(site: Site) -> None:
    site.ca.unlink()


def _bad_ca(site: Site) -> None:
    site.ca.write_text("no certificates here\n")


@pytest.mark.parametrize(
    ("damage", "culprit", "message"),
    [
        (_no_cert, "cert", "tls_server_config.cert_file of .* cannot read: No such file"),
        (_no_key, "key", "tls_server_config.key_file of .* cannot read: No such file"),
        (_cert_is_a_directory, "cert", "cert_file of .* not a regular file"),
        (_cert_is_a_fifo, "cert", "cert_file of .* not a regular file"),
        (_bad_cert, "cert", "not a PEM certificate"),
        (_bad_key, "key", "not a PEM private key"),
        (_mismatched_key, "key", "does not match the certificate in"),
        (_encrypted_key, "key", "encrypted; a passphrase is not supported"),
        (_no_ca, "ca", "client_ca_file of .* cannot read"),
        (_bad_ca, "ca", "client_ca_file of .* not PEM certificates"),
    ],
)
def test_bad_files_are_refused_naming_the_file(site: Site, damage: Any, culprit: str, message: str) -> None:
    path = site.write(MTLS)
    damage(site)
    with pytest.raises(WebConfigError, match=message) as caught:
        load_web_config(path)
    assert caught.value.file == str(getattr(site, culprit))
    assert str(caught.value).startswith(f"{getattr(site, culprit)}: ")
    assert path in str(caught.value)
    assert "\n" not in str(caught.value)


# -- the live source ---------------------------------------------------------------------------


def test_no_path_is_plain_http_without_auth() -> None:
    source = WebConfigSource(None)
    assert source.current() == WebConfig(tls=None, users={}, headers=(), client_auth="NoClientCert")
    assert source.tls_context() is None
    assert source.reload() is False


def test_a_bad_file_at_start_raises(site: Site) -> None:
    with pytest.raises(WebConfigError, match="unknown key"):
        WebConfigSource(site.write("nonsense: 1\n"))


def test_a_changed_file_is_read_again(site: Site, hashes: dict[str, str]) -> None:
    source = WebConfigSource(site.write(""), min_interval=0)
    assert not source.current().users
    site.write(f"basic_auth_users:\n  alice: {hashes['alice']}\n")
    assert set(source.current().users) == {"alice"}


def test_changes_are_looked_for_at_most_once_per_interval(site: Site, hashes: dict[str, str]) -> None:
    source = WebConfigSource(site.write(""), min_interval=3600)
    site.write(f"basic_auth_users:\n  alice: {hashes['alice']}\n")
    assert not source.current().users
    assert source.reload() is True
    assert set(source.current().users) == {"alice"}


def test_reload_says_whether_a_new_config_is_in_force(
    site: Site, hashes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    source = WebConfigSource(site.write(""), min_interval=3600)
    first = source.current()
    assert source.reload() is False  # nothing changed
    assert source.current() is first
    site.write(f"basic_auth_users:\n  alice: {hashes['alice']}\n")
    assert source.reload() is True
    good = source.current()
    site.write("basic_auth_users: [\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="host_pm_exporter.webconfig"):
        assert source.reload() is False  # bad: logged, the last good one kept
    assert source.current() is good
    mine = [r for r in caplog.records if r.name == "host_pm_exporter.webconfig"]  # not other tests' threads
    assert [r.levelno for r in mine] == [logging.WARNING]


def test_a_touch_without_a_change_keeps_the_config(site: Site) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    first = source.current()
    os.utime(site.cert, ns=(1, 1))
    os.utime(site.config, ns=(2, 2))
    assert source.current() is first


def test_a_same_size_rewrite_in_the_same_instant_is_found_by_reload(site: Site, hashes: dict[str, str]) -> None:
    source = WebConfigSource(site.write("basic_auth_users:\n  alice: " + hashes["alice"] + "\n"), min_interval=0)
    st = site.config.stat()
    site.write("basic_auth_users:\n  alicf: " + hashes["alice"] + "\n")
    os.utime(site.config, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert set(source.current().users) == {"alice"}  # size, inode and time alike: unseen
    assert source.reload() is True
    assert set(source.current().users) == {"alicf"}


def test_a_bad_reread_keeps_the_last_good_config_and_logs_once(
    site: Site, hashes: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    path = site.write(TLS + f"basic_auth_users:\n  alice: {hashes['alice']}\n")
    source = WebConfigSource(path, min_interval=0)
    good = source.current()
    caplog.set_level(logging.INFO, logger="host_pm_exporter.webconfig")

    site.write(TLS + "basic_auth_users: [\n")  # the config itself is broken
    for _ in range(3):
        assert source.current() is good
    warnings_ = [r for r in ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert warnings_[0].name == "host_pm_exporter.webconfig"
    assert getattr(warnings_[0], "file") == path  # noqa: B009 (an extra field)
    assert "not valid YAML" in getattr(warnings_[0], "err")  # noqa: B009

    caplog.clear()
    site.write(TLS + f"basic_auth_users:\n  alice: {hashes['alice']}\n  bob: {hashes['bob']}\n")
    _bad_key(site)  # a good config naming a broken key
    for _ in range(3):
        assert source.current() is good
    warnings_ = [r for r in ours(caplog) if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert getattr(warnings_[0], "file") == str(site.key)  # noqa: B009
    assert "not a PEM private key" in getattr(warnings_[0], "err")  # noqa: B009

    caplog.clear()
    site.install(site.pki.server_one)  # repaired
    fixed = source.current()
    assert fixed is not good
    assert set(fixed.users) == {"alice", "bob"}
    assert [r.levelno for r in ours(caplog)] == [logging.INFO]


def test_current_is_safe_from_many_threads(site: Site, hashes: dict[str, str]) -> None:
    source = WebConfigSource(site.write(""), min_interval=0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                config = source.current()
                assert isinstance(config, WebConfig)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for i in range(30):
        site.write(f"basic_auth_users:\n  user{i}: {hashes['alice']}\n" + TLS * (i % 2))
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    source.reload()
    assert set(source.current().users) == {"user29"}


# -- TLS handshakes ----------------------------------------------------------------------------


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])  # with SNI, and without
def test_the_configured_certificate_is_served(site: Site, pki: PKI, server_hostname: str) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server:
        peer = connect(server.port, pki, server_hostname=server_hostname)
        assert (peer.cn, peer.serial) == ("server-one", 0x1001)
        assert peer.version == "TLSv1.3"
        assert server.outcome() == ("ok", "")


def test_one_reading_is_one_context_and_a_change_makes_a_new_one(site: Site) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    first = source.tls_context()
    assert first is not None
    assert source.tls_context() is first
    assert source.reload() is False  # the same files: the same context
    assert source.tls_context() is first
    site.write(TLS + "  min_version: TLS13\n")
    assert source.tls_context() is not first


def test_a_tls11_client_is_refused_by_default(site: Site, pki: PKI) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server:
        with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
            # SECLEVEL=0: so that this OpenSSL offers TLS 1.1 at all, and the server says no
            connect(
                server.port,
                pki,
                min_version=ssl.TLSVersion.TLSv1,
                max_version=ssl.TLSVersion.TLSv1_1,
                ciphers="DEFAULT:@SECLEVEL=0",
            )
        kind, detail = server.outcome()
        assert kind == "error"
        assert "UNSUPPORTED_PROTOCOL" in detail


def test_min_and_max_versions(site: Site, pki: PKI) -> None:
    source = WebConfigSource(site.write(TLS + "  min_version: TLS13\n"), min_interval=0)
    with serving(source) as server:
        with pytest.raises(ssl.SSLError):
            connect(server.port, pki, max_version=ssl.TLSVersion.TLSv1_2)
        assert connect(server.port, pki).version == "TLSv1.3"
    source = WebConfigSource(site.write(TLS + "  max_version: TLS12\n"), min_interval=0)
    with serving(source) as server:
        assert connect(server.port, pki).version == "TLSv1.2"


def test_client_certificates_required_and_verified(site: Site, pki: PKI) -> None:
    source = WebConfigSource(site.write(MTLS), min_interval=0)
    with serving(source) as server:
        with pytest.raises(REFUSED):
            connect(server.port, pki)
        assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in server.outcome()[1]
        with pytest.raises(REFUSED):
            connect(server.port, pki, client=pki.rogue_client)
        assert "CERTIFICATE_VERIFY_FAILED" in server.outcome()[1]
        assert connect(server.port, pki, client=pki.client).cn == "server-one"
        assert server.outcome() == ("ok", "client")
        # and the same over TLS 1.2, where the refusal comes in the handshake itself
        with pytest.raises(ssl.SSLError):
            connect(server.port, pki, max_version=ssl.TLSVersion.TLSv1_2)
        assert server.outcome()[0] == "error"
        connect(server.port, pki, client=pki.client, max_version=ssl.TLSVersion.TLSv1_2)
        assert server.outcome() == ("ok", "client")


def test_client_certificates_verified_if_given(site: Site, pki: PKI) -> None:
    source = WebConfigSource(
        site.write(TLS + "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"), min_interval=0
    )
    with serving(source) as server:
        connect(server.port, pki)
        assert server.outcome() == ("ok", "")
        connect(server.port, pki, client=pki.client)
        assert server.outcome() == ("ok", "client")
        with pytest.raises(REFUSED):
            connect(server.port, pki, client=pki.rogue_client)
        assert server.outcome()[0] == "error"


def test_cipher_suites_are_applied(site: Site, pki: PKI) -> None:
    source = WebConfigSource(
        site.write(TLS + "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n"), min_interval=0
    )
    with serving(source) as server:
        tls12 = ssl.TLSVersion.TLSv1_2
        assert connect(server.port, pki, max_version=tls12).cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"
        assert server.outcome()[0] == "ok"
        with pytest.raises(ssl.SSLError):
            connect(server.port, pki, max_version=tls12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        assert "NO_SHARED_CIPHER" in server.outcome()[1]


@pytest.mark.parametrize("rename", [False, True], ids=["rewritten", "renamed-over"])
def test_a_rotated_certificate_is_served_without_a_restart(site: Site, pki: PKI, rename: bool) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server:
        assert (connect(server.port, pki).cn, connect(server.port, pki).serial) == ("server-one", 0x1001)
        site.install(pki.server_two, rename=rename)
        peer = connect(server.port, pki)
        assert (peer.cn, peer.serial) == ("server-two-rotated", 0x2002)
        site.install(pki.server_one, rename=rename)
        assert connect(server.port, pki, server_hostname="127.0.0.1").cn == "server-one"


def test_a_change_of_client_auth_applies_to_the_next_connection(site: Site, pki: PKI) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server:
        connect(server.port, pki)
        site.write(MTLS)
        with pytest.raises(REFUSED):
            connect(server.port, pki)
        connect(server.port, pki, client=pki.client)
        site.write(TLS + "  min_version: TLS13\n")
        connect(server.port, pki)
        with pytest.raises(ssl.SSLError):
            connect(server.port, pki, max_version=ssl.TLSVersion.TLSv1_2)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLS12", "TLS13"])
def test_no_session_is_resumed_under_a_changed_config_so_none_skips_a_new_client_certificate_rule(
    site: Site, pki: PKI, version: ssl.TLSVersion
) -> None:
    """TLS 1.3: never resumed (no tickets).  TLS 1.2: resumed by session ID under the
    config that made the session only; after a change, a full handshake, which asks for
    the certificate the new config requires."""
    source = WebConfigSource(site.write(TLS), min_interval=0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca.cert)
    ctx.maximum_version = version

    def resume(session: ssl.SSLSession | None, port: int) -> tuple[ssl.SSLSession | None, bool]:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with raw, ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            if tls.recv(16) != b"hello\n":
                raise ConnectionError("no greeting")
            got = tls.session, bool(tls.session_reused)
            with contextlib.suppress(OSError):
                tls.unwrap()
            return got

    with serving(source) as server:
        session, reused = resume(None, server.port)
        assert reused is False
        assert resume(session, server.port)[1] is (version == ssl.TLSVersion.TLSv1_2)
        site.write(MTLS)
        with pytest.raises(REFUSED):
            resume(session, server.port)
        site.write(TLS + "  max_version: TLS13\n")  # laxer again, but another config: a full handshake
        assert resume(session, server.port)[1] is False


def test_a_bad_rotation_keeps_serving_the_last_good_certificate(
    site: Site, pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server, caplog.at_level(logging.WARNING, logger="host_pm_exporter.webconfig"):
        shutil.copyfile(pki.server_two.cert, site.cert)  # the new certificate, the old key: a mismatch
        assert connect(server.port, pki).cn == "server-one"
        assert connect(server.port, pki).cn == "server-one"
        assert len(ours(caplog)) == 1
        assert "does not match" in getattr(ours(caplog)[0], "err")  # noqa: B009
        shutil.copyfile(pki.server_two.key, site.key)  # the rotation completed
        assert connect(server.port, pki).cn == "server-two-rotated"


def test_a_config_that_drops_tls_keeps_the_last_tls_context(site: Site, pki: PKI) -> None:
    source = WebConfigSource(site.write(TLS), min_interval=0)
    with serving(source) as server:
        site.write("")
        assert source.current().tls is None
        assert connect(server.port, pki).cn == "server-one"


def test_a_config_without_tls_at_start_stays_plain_http(site: Site) -> None:
    source = WebConfigSource(site.write(""), min_interval=0)
    assert source.tls_context() is None
    site.write(TLS)
    assert source.current().tls is not None
    assert source.tls_context() is None  # TLS needs a restart


# -- basic auth ----------------------------------------------------------------------------


def _basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


@pytest.fixture
def users(hashes: dict[str, str]) -> WebConfig:
    return WebConfig(tls=None, users={k: v.encode() for k, v in hashes.items()}, headers=(), client_auth="NoClientCert")


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes bcrypt.checkpw was called with, in order."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_no_users_means_no_auth() -> None:
    auth = Authenticator()
    config = WebConfig(tls=None, users={}, headers=(), client_auth="NoClientCert")
    assert auth.check(config, None)
    assert auth.check(config, "Basic garbage")


def test_right_and_wrong_passwords(users: WebConfig, checkpw_calls: list[bytes]) -> None:
    auth = Authenticator()
    assert auth.check(users, _basic(b"alice", b"wonderland"))
    assert auth.check(users, _basic(b"bob", b"builder"))
    assert not auth.check(users, _basic(b"alice", b"builder"))
    assert not auth.check(users, _basic(b"alice", b""))
    assert not auth.check(users, _basic(b"Alice", b"wonderland"))  # names are case-sensitive
    assert auth.check(users, "basic " + _basic(b"alice", b"wonderland")[6:])  # the scheme is not
    assert auth.check(users, "Basic  " + _basic(b"alice", b"wonderland")[6:] + " ")
    assert len(checkpw_calls) == 5  # the last two were in the cache


def test_an_unknown_user_costs_one_check_against_a_dummy_of_the_highest_cost(
    users: WebConfig, checkpw_calls: list[bytes]
) -> None:
    auth = Authenticator()
    assert not auth.check(users, _basic(b"mallory", b"wonderland"))
    assert len(checkpw_calls) == 1
    assert checkpw_calls[0] not in users.users.values()
    assert checkpw_calls[0].startswith(b"$2b$05$")  # bob's cost, the highest


def test_names_are_compared_with_every_user_in_constant_time(
    users: WebConfig, monkeypatch: pytest.MonkeyPatch, checkpw_calls: list[bytes]
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    # only the module's own comparisons: bcrypt < 4.1 calls hmac.compare_digest too
    fake = SimpleNamespace(compare_digest=counting, new=hmac.new)
    monkeypatch.setattr("host_pm_exporter.webconfig.auth.hmac", fake)
    auth = Authenticator()
    for user in (b"alice", b"bob", b"mallory"):
        compared.clear()
        auth.check(users, _basic(user, b"x"))
        assert sorted(a for a, _ in compared) == [b"alice", b"bob"]  # no early exit
        assert {b for _, b in compared} == {user}


MALFORMED = [
    None,
    "",
    "Basic",
    "Basic ",
    "Bearer " + base64.b64encode(b"alice:wonderland").decode(),
    "Basic !!!!",
    "Basic " + base64.b64encode(b"alice:wonderland").decode().rstrip("="),  # no padding
    "Basic " + base64.b64encode(b"alice:wonderland").decode() + "x",
    "Basic " + base64.b64encode(b"alicewonderland").decode(),  # no colon
    "Basic " + base64.b64encode(b"\xffalice:wonderland").decode(),  # user not UTF-8
    "Basic " + base64.b64encode(b"alice:wonder\xffland").decode(),  # password not UTF-8
    "Basic é" + base64.b64encode(b"alice:wonderland").decode(),  # not ASCII
    "Basic\t" + base64.b64encode(b"alice:wonderland").decode(),
]


@pytest.mark.parametrize("header", MALFORMED)
def test_malformed_headers_are_refused_without_bcrypt(
    users: WebConfig, checkpw_calls: list[bytes], header: str | None
) -> None:
    assert Authenticator().check(users, header) is False
    assert checkpw_calls == []


def test_a_password_over_72_bytes_never_matches(checkpw_calls: list[bytes]) -> None:
    long = b"p" * 73
    # what bcrypt < 5 would have made of it: the first 72 bytes
    config = WebConfig(tls=None, users={"alice": _hash(long[:72]).encode()}, headers=(), client_auth="NoClientCert")
    assert Authenticator().check(config, _basic(b"alice", long)) is False
    assert checkpw_calls == []
    assert Authenticator().check(config, _basic(b"alice", long[:72])) is True


def test_2y_hashes_are_checked(site: Site) -> None:
    hashed = "$2y$" + _hash(b"secret")[4:]
    config = load_web_config(site.write(f"basic_auth_users:\n  alice: {hashed}\n"))
    auth = Authenticator()
    assert auth.check(config, _basic(b"alice", b"secret"))
    assert not auth.check(config, _basic(b"alice", b"secreT"))


def test_verdicts_are_cached(users: WebConfig, checkpw_calls: list[bytes]) -> None:
    auth = Authenticator()
    for _ in range(5):
        assert auth.check(users, _basic(b"alice", b"wonderland"))
        assert not auth.check(users, _basic(b"alice", b"guess"))
        assert not auth.check(users, _basic(b"mallory", b"guess"))
    assert len(checkpw_calls) == 3
    assert not auth.check(users, _basic(b"alice", b"guess2"))
    assert len(checkpw_calls) == 4


def test_the_cache_is_keyed_by_the_hash(users: WebConfig, checkpw_calls: list[bytes]) -> None:
    auth = Authenticator()
    assert auth.check(users, _basic(b"alice", b"wonderland"))
    changed = WebConfig(
        tls=None, users={"alice": _hash(b"looking-glass").encode()}, headers=(), client_auth="NoClientCert"
    )
    assert not auth.check(changed, _basic(b"alice", b"wonderland"))  # the old password no longer works
    assert auth.check(changed, _basic(b"alice", b"looking-glass"))
    removed = WebConfig(tls=None, users={"bob": users.users["bob"]}, headers=(), client_auth="NoClientCert")
    assert not auth.check(removed, _basic(b"alice", b"wonderland"))
    assert len(checkpw_calls) == 4


def test_the_cache_is_bounded_least_recently_used_first(users: WebConfig, checkpw_calls: list[bytes]) -> None:
    auth = Authenticator(cache_size=2)
    a, b, c, d = (_basic(b"alice", p) for p in (b"wonderland", b"b", b"c", b"d"))
    for header in (a, b, c, b, d):  # d pushes out c, the least recently used wrong one
        auth.check(users, header)
    assert len(checkpw_calls) == 4
    for header in (a, b, d):
        auth.check(users, header)
    assert len(checkpw_calls) == 4
    auth.check(users, c)
    assert len(checkpw_calls) == 5
    uncached = Authenticator(cache_size=0)
    uncached.check(users, a)
    uncached.check(users, a)
    assert len(checkpw_calls) == 7


def test_a_flood_of_wrong_passwords_never_pushes_a_right_one_out(users: WebConfig, checkpw_calls: list[bytes]) -> None:
    auth = Authenticator(cache_size=4)
    right = _basic(b"alice", b"wonderland")
    assert auth.check(users, right)
    for i in range(20):
        assert not auth.check(users, _basic(b"alice", b"wrong%d" % i))
    calls = len(checkpw_calls)
    assert auth.verdict(users, right) is True  # known without bcrypt
    assert len(checkpw_calls) == calls


def test_an_unknown_user_is_checked_against_a_real_hash_of_the_configured_cost(users: WebConfig) -> None:
    auth = Authenticator()
    check = auth.verdict(users, _basic(b"mallory", b"x"))
    assert isinstance(check, Check)
    assert not check.known
    assert bcrypt.hashpw(b"x", check.target[:29]) != check.target  # a valid hash: bcrypt runs in full
    assert check.target.startswith(b"$2b$05$")
    assert len(check.target) == 60
    known = auth.verdict(users, _basic(b"bob", b"x"))
    assert isinstance(known, Check)
    assert known.known
    assert known.target == users.users["bob"]
    assert auth.verify(check) is False


def test_check_is_safe_from_many_threads(users: WebConfig) -> None:
    auth = Authenticator(cache_size=4)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        for j in range(20):
            header = _basic(b"alice", b"wonderland" if (i + j) % 2 else b"wrong%d" % (j % 6))
            verdict = auth.check(users, header)
            with lock:
                results.append(verdict == ((i + j) % 2 == 1))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160
    assert all(results)
