"""The web configuration: TLS, client certificates, basic auth and extra response headers,
read from a file in the format of Prometheus exporter-toolkit's web-config.yml (what
node_exporter takes with --web.config.file)::

    tls_server_config:
      cert_file: server.crt          # relative paths: to the config file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12             # TLS10, TLS11, TLS12 (the default), TLS13
      max_version: TLS13
      cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
      prefer_server_cipher_suites: true
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      alice: $2y$10$...

The reading is as strict as exporter-toolkit's: an unknown key, a value of the wrong type,
a duplicated key or a file that cannot be loaded is a `WebConfigError`.  Where Python's
ssl module cannot do what Go's crypto/tls does, the difference is the smallest one that
is still safe:

- client_auth_type: NoClientCert asks for no certificate, VerifyClientCertIfGiven
  verifies one when given (CERT_OPTIONAL), RequireAndVerifyClientCert requires and
  verifies one (CERT_REQUIRED).  Python verifies every client certificate it asks for,
  so RequestClientCert is served as VerifyClientCertIfGiven and RequireAnyClientCert as
  RequireAndVerifyClientCert; both therefore need client_ca_file, as does any type but
  NoClientCert.  client_ca_file with NoClientCert is loaded and unused (exporter-toolkit
  refuses that).
- cipher_suites take Go's names of the TLS 1.2 suites (ECDHE with AES-GCM, CHACHA20 or
  AES-CBC, and RSA key exchange with AES) and hand OpenSSL its names for them.  TLS 1.3
  suites are not configurable in Python (nor in Go): their names are accepted and have
  no effect.
- min_version TLS10 or TLS11 is accepted, but OpenSSL 3 at its default security level
  has no suite for those versions: such clients are refused all the same.
- No session is resumed (no tickets): a resumed session would skip the client
  certificate check of a config made stricter since.
- http_server_config.http2 is accepted and has no effect: the server speaks HTTP/1.1.
- The exporter-toolkit keys cert, key, client_ca (inline PEM), client_allowed_sans and
  curve_preferences are refused as not supported, rather than silently ignored.
- headers: the ones the server sets itself or that would break the framing of a
  response (Content-Length, Transfer-Encoding, Connection, ...) are refused.
- basic_auth_users: bcrypt hashes ($2a$, $2b$, $2y$); a password longer than 72 bytes
  never matches (as in Go's bcrypt since 2022, and bcrypt >= 5 in Python).

`WebConfigSource` re-reads the file when it or a file it names changes, and serves a
rotated certificate from the next TLS handshake on, without a restart.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
import re
import stat
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("host_pm_exporter.webconfig")

_MAX_CONFIG_BYTES = 1 << 20  # a web config is a few lines; anything this large is a mistake

# The ssl module (and OpenSSL with it: 5 MiB of memory) is imported only for a config
# with TLS: these name its constants.
_CLIENT_AUTH = {
    "NoClientCert": "CERT_NONE",
    "RequestClientCert": "CERT_OPTIONAL",  # Go does not verify it; Python does
    "RequireAnyClientCert": "CERT_REQUIRED",  # idem
    "VerifyClientCertIfGiven": "CERT_OPTIONAL",
    "RequireAndVerifyClientCert": "CERT_REQUIRED",
}

_TLS_VERSIONS = {"TLS10": "TLSv1", "TLS11": "TLSv1_1", "TLS12": "TLSv1_2", "TLS13": "TLSv1_3"}

# Go's crypto/tls names of the TLS 1.2 suites -> OpenSSL's.
CIPHER_SUITES: Mapping[str, str] = MappingProxyType(
    {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",  # Go's older alias
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",  # idem
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    }
)
_TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"})

# Set by the server itself, or able to break the framing of a response.
_RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "date",
        "server",
        "www-authenticate",
        "keep-alive",
        "trailer",
        "upgrade",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 token
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")  # printable ASCII, space and tab: no CR, LF, NUL
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}")
_MAX_PASSWORD = 72  # bcrypt's limit

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
)
_HTTP_KEYS = ("headers", "http2")
_UNSUPPORTED_TLS_KEYS = ("cert", "key", "client_ca", "client_allowed_sans", "curve_preferences")


class WebConfigError(Exception):
    """One clear line saying what is wrong and in which file.

    `file` is the file at fault (the web config, or a certificate or key it names) and
    `reason` what is wrong with it; str() is both."""

    def __init__(self, file: str, reason: str) -> None:
        self.file = file
        self.reason = " ".join(reason.split())
        super().__init__(f"{file}: {self.reason}")


@dataclass(frozen=True)
class WebConfig:
    """One reading of the web config, as the server uses it."""

    tls: ssl.SSLContext | None  # server-side context, or None for plain HTTP
    users: Mapping[str, bytes]  # user -> bcrypt hash; empty: no auth
    headers: tuple[tuple[str, str], ...]  # extra response headers
    client_auth: str  # client_auth_type as configured, "NoClientCert" when none


_NO_CONFIG = WebConfig(tls=None, users=MappingProxyType({}), headers=(), client_auth="NoClientCert")


def load_web_config(path: str) -> WebConfig:
    """Read, check and build the web config in `path`: the SSLContext with its
    certificate, key and client CAs loaded.  Raises WebConfigError."""
    config, _digest = _Loader(path).load()
    return config


# -- reading -------------------------------------------------------------------------------


def _stat(path: str) -> tuple[int, int, int] | None:
    """(st_mtime_ns, st_size, st_ino), or None when it cannot be had."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@functools.cache
def _strict_loader() -> type[Any]:
    """safe_load that refuses a key given twice (Go's strict YAML does too).  PyYAML is
    imported only when there is a web config to read (it costs the process 1 MiB)."""
    import yaml  # noqa: PLC0415

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Hashable, Any]:
        seen: set[Hashable] = set()
        for key_node, _value in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, Hashable):  # an unhashable key is construct_mapping's to refuse
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return loader.construct_mapping(node, deep=True)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


def _type_name(value: object) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "a value"
    )


@dataclass(frozen=True)
class _TLSSettings:
    cert_file: str
    key_file: str
    client_auth: str
    verify_mode: ssl.VerifyMode
    client_ca_file: str | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: tuple[str, ...]  # OpenSSL names; empty: OpenSSL's defaults
    prefer_server_ciphers: bool


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> NoReturn:
    # Without a callback, OpenSSL would prompt on the terminal for an encrypted key.
    raise _EncryptedKey


class _Loader:
    """One reading of a web config.  `stats` are the files read so far, each as it was
    just before it was read (also after a failure: a source then waits for one of them to
    change before it tries again); `digest` covers their contents."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.base = os.path.dirname(self.path)
        self.stats: dict[str, tuple[int, int, int] | None] = {}
        self._digest = sha256()

    # -- errors and files

    def _bad(self, reason: str) -> NoReturn:
        raise WebConfigError(self.path, reason)

    def _bad_file(self, path: str, key: str, reason: str) -> NoReturn:
        raise WebConfigError(path, f"{key} of {self.path}: {reason}")

    def _read(self, path: str, key: str | None, limit: int | None = None) -> bytes:

        def fail(reason: str) -> NoReturn:
            if key is None:
                self._bad(reason)
            self._bad_file(path, key, reason)

        try:
            st = os.stat(path)
        except OSError as err:
            self.stats[path] = None
            fail(f"cannot read: {err.strerror or err}")
        self.stats[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        if not stat.S_ISREG(st.st_mode):
            fail("not a regular file")  # nor opened: a FIFO would hang
        try:
            with open(path, "rb") as f:
                data = f.read() if limit is None else f.read(limit + 1)
        except OSError as err:
            fail(f"cannot read: {err.strerror or err}")
        if limit is not None and len(data) > limit:
            fail(f"larger than {limit} bytes")
        self._digest.update(b"%d:%s\0%d:" % (len(path), os.fsencode(path), len(data)))
        self._digest.update(data)
        return data

    def _resolve(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.base, value))

    # -- typed values

    def _mapping(self, value: object, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self._bad(f"{where} must be a mapping, not {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or key not in keys:
                if where == "tls_server_config" and key in _UNSUPPORTED_TLS_KEYS:
                    self._bad(f"{where}.{key} is not supported by this exporter")
                prefix = f"{where}." if where != "the file" else ""
                self._bad(f"unknown key {prefix}{key} (known: {', '.join(keys)})")
        return value

    def _string(self, section: dict[str, Any], key: str, where: str) -> str | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self._bad(f"{where}.{key} must be a string, not {_type_name(value)}")
        return value

    def _choice(self, section: dict[str, Any], key: str, where: str, choices: Mapping[str, Any]) -> str | None:
        value = self._string(section, key, where)
        if value is not None and value not in choices:
            self._bad(f"{where}.{key}: unknown value {value!r} (one of {', '.join(choices)})")
        return value

    # -- the sections

    def load(self) -> tuple[WebConfig, bytes]:
        """The config and the digest of its files; every failure is a WebConfigError
        (a NUL in a path, YAML nested past Python's recursion limit included)."""
        import yaml  # noqa: PLC0415 (see _strict_loader)

        try:
            return self._load()
        except (ValueError, TypeError, RecursionError, yaml.YAMLError) as err:
            raise WebConfigError(self.path, f"cannot be read: {type(err).__name__}: {str(err)[:200]}") from None

    def _load(self) -> tuple[WebConfig, bytes]:
        raw = self._read(self.path, None, _MAX_CONFIG_BYTES)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            self._bad(f"not UTF-8 text (byte {err.start})")
        import yaml  # noqa: PLC0415 (see _strict_loader)

        loader = _strict_loader()(text)
        try:
            doc = loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            self._bad(f"not valid YAML: {err.problem or err.context}{at}")
        except yaml.YAMLError as err:
            self._bad(f"not valid YAML: {err}")
        finally:
            loader.dispose()
        top = self._mapping(doc, "the file", _TOP_KEYS)
        tls_section = top.get("tls_server_config")
        tls = None if tls_section is None else self._tls(tls_section)
        headers = self._headers(self._mapping(top.get("http_server_config"), "http_server_config", _HTTP_KEYS))
        users = self._users(top.get("basic_auth_users"))
        config = WebConfig(
            tls=None if tls is None else self._context(tls),
            users=users,
            headers=headers,
            client_auth="NoClientCert" if tls is None else tls.client_auth,
        )
        return config, self._digest.digest()

    def _tls(self, value: object) -> _TLSSettings:
        import ssl  # noqa: PLC0415 (only for a config with TLS)

        where = "tls_server_config"
        section = self._mapping(value, where, _TLS_KEYS)
        cert = self._string(section, "cert_file", where)
        key = self._string(section, "key_file", where)
        if not cert:
            self._bad(f"{where}.cert_file is required")
        if not key:
            self._bad(f"{where}.key_file is required")
        client_auth = self._choice(section, "client_auth_type", where, _CLIENT_AUTH) or "NoClientCert"
        verify_mode = ssl.VerifyMode[_CLIENT_AUTH[client_auth]]
        ca = self._string(section, "client_ca_file", where) or None
        if verify_mode != ssl.CERT_NONE and ca is None:
            self._bad(f"{where}.client_auth_type {client_auth} needs client_ca_file")
        low = ssl.TLSVersion[_TLS_VERSIONS[self._choice(section, "min_version", where, _TLS_VERSIONS) or "TLS12"]]
        high_name = self._choice(section, "max_version", where, _TLS_VERSIONS)
        high = ssl.TLSVersion.MAXIMUM_SUPPORTED if high_name is None else ssl.TLSVersion[_TLS_VERSIONS[high_name]]
        if high_name is not None and low > high:
            self._bad(f"{where}.min_version is above max_version")
        prefer = section.get("prefer_server_cipher_suites", True)
        if prefer is None:
            prefer = True
        if not isinstance(prefer, bool):
            self._bad(f"{where}.prefer_server_cipher_suites must be true or false, not {_type_name(prefer)}")
        return _TLSSettings(
            cert_file=self._resolve(cert),
            key_file=self._resolve(key),
            client_auth=client_auth,
            verify_mode=verify_mode,
            client_ca_file=None if ca is None else self._resolve(ca),
            min_version=low,
            max_version=high,
            ciphers=self._ciphers(section.get("cipher_suites"), where),
            prefer_server_ciphers=prefer,
        )

    def _ciphers(self, value: object, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self._bad(f"{where}.cipher_suites must be a list, not {_type_name(value)}")
        names: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self._bad(f"{where}.cipher_suites: {item!r} is not a string")
            if item in _TLS13_SUITES:
                continue  # TLS 1.3's suites are not configurable
            if item not in CIPHER_SUITES:
                self._bad(f"{where}.cipher_suites: unknown or unsupported cipher suite {item!r}")
            if CIPHER_SUITES[item] not in names:
                names.append(CIPHER_SUITES[item])
        if value and not names:
            self._bad(f"{where}.cipher_suites names no TLS 1.2 suite (TLS 1.3's are not configurable)")
        return tuple(names)

    def _headers(self, section: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        http2 = section.get("http2")
        if http2 is not None and not isinstance(http2, bool):
            self._bad(f"http_server_config.http2 must be true or false, not {_type_name(http2)}")
        value = section.get("headers")
        if value is None:
            return ()
        if not isinstance(value, dict):
            self._bad(f"http_server_config.headers must be a mapping, not {_type_name(value)}")
        headers: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, text in value.items():
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                self._bad(f"http_server_config.headers: {name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                self._bad(f"http_server_config.headers: {name} is set by the server and cannot be configured")
            if name.lower() in seen:
                self._bad(f"http_server_config.headers: {name} is given twice")
            seen.add(name.lower())
            if not isinstance(text, str):
                self._bad(f"http_server_config.headers.{name} must be a string, not {_type_name(text)}")
            if not _FIELD_VALUE.fullmatch(text):
                self._bad(f"http_server_config.headers.{name}: the value must be printable ASCII on one line")
            headers.append((name, text.strip(" \t")))
        return tuple(headers)

    def _users(self, value: object) -> Mapping[str, bytes]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            self._bad(f"basic_auth_users must be a mapping, not {_type_name(value)}")
        users: dict[str, bytes] = {}
        for name, hashed in value.items():
            if not isinstance(name, str):
                self._bad(f"basic_auth_users: user name {name!r} is not a string")
            if ":" in name:
                self._bad(f"basic_auth_users: user name {name!r} contains ':', which basic auth cannot carry")
            if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
                self._bad(f"basic_auth_users.{name}: not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
            users[name] = hashed.encode("ascii")
        return MappingProxyType(users)

    # -- the TLS context

    def _context(self, tls: _TLSSettings) -> ssl.SSLContext:
        import ssl  # noqa: PLC0415 (only for a config with TLS)

        where = "tls_server_config"
        # Read (and so stat and hash) each file before OpenSSL loads it.
        self._read(tls.cert_file, f"{where}.cert_file")
        self._read(tls.key_file, f"{where}.key_file")
        if tls.client_ca_file is not None:
            self._read(tls.client_ca_file, f"{where}.client_ca_file")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1 are deprecated
            ctx.minimum_version = tls.min_version
            ctx.maximum_version = tls.max_version
        if tls.prefer_server_ciphers:
            ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        else:
            ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        _no_tickets(ctx)
        if tls.ciphers:
            self._set_ciphers(ctx, tls.ciphers)
        self._load_cert(ctx, tls)
        if tls.client_ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=tls.client_ca_file)
            except OSError as err:
                self._bad_file(tls.client_ca_file, f"{where}.client_ca_file", f"not PEM certificates{_ssl_reason(err)}")
        ctx.verify_mode = tls.verify_mode
        return ctx

    def _set_ciphers(self, ctx: ssl.SSLContext, ciphers: tuple[str, ...]) -> None:
        import ssl  # noqa: PLC0415 (only for a config with TLS)

        where = "tls_server_config.cipher_suites"
        try:
            ctx.set_ciphers(":".join(ciphers))
        except ssl.SSLError:
            self._bad(f"{where}: none is available in this OpenSSL")
        available = {c["name"] for c in ctx.get_ciphers()}
        missing = [c for c in ciphers if c not in available]
        if missing:
            self._bad(f"{where}: {', '.join(missing)} not available in this OpenSSL")

    def _load_cert(self, ctx: ssl.SSLContext, tls: _TLSSettings) -> None:
        import ssl  # noqa: PLC0415 (only for a config with TLS)

        cert_key, key_key = "tls_server_config.cert_file", "tls_server_config.key_file"
        try:
            ctx.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
        except _EncryptedKey:
            self._bad_file(tls.key_file, key_key, "the key is encrypted; a passphrase is not supported")
        except ssl.SSLError as err:
            if err.reason == "KEY_VALUES_MISMATCH":
                self._bad_file(tls.key_file, key_key, f"does not match the certificate in {tls.cert_file}")
            if not _has_certificates(tls.cert_file):
                self._bad_file(tls.cert_file, cert_key, f"not a PEM certificate{_ssl_reason(err)}")
            self._bad_file(tls.key_file, key_key, f"not a PEM private key{_ssl_reason(err)}")
        except OSError as err:  # gone since it was read
            self._bad_file(tls.cert_file, cert_key, f"cannot load it and its key{_ssl_reason(err)}")


def _no_tickets(ctx: ssl.SSLContext) -> None:
    # A resumed session skips the client certificate check, so a session made under an
    # older, laxer config would let its client in under a stricter one.  No tickets: no
    # TLS 1.3 resumption, nor TLS 1.2 by ticket; TLS 1.2 by session ID does not happen
    # either, as the session is made in the config's context, not the dispatcher's
    # (tests/test_webconfig.py checks both versions).  A full handshake per connection
    # is cheap next to a scrape.
    import ssl  # noqa: PLC0415 (only for a config with TLS)

    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0


def _has_certificates(path: str) -> bool:
    import ssl  # noqa: PLC0415 (only for a config with TLS)

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except OSError:
        return False
    return True


def _ssl_reason(err: OSError) -> str:
    """' (what OpenSSL says)', or '' when it says no more than 'PEM lib'."""
    import ssl  # noqa: PLC0415 (only for a config with TLS)

    if isinstance(err, ssl.SSLError):
        return f" ({str(err.reason).replace('_', ' ').lower()})" if err.reason else ""
    return f" ({err.strerror or err})"


# -- the live config -----------------------------------------------------------------------


def _dispatcher(source: WebConfigSource) -> ssl.SSLContext:
    """The one context the server listens with.  Each handshake is handed over to the
    current config's context in the SNI callback (which OpenSSL runs with or without SNI):
    that switches the certificate, key, client CAs and cipher suites.  What OpenSSL
    copies into a connection before the callback runs (client certificate mode, protocol
    versions, options) is copied here from the current config, which is refreshed just
    before each connection is created."""
    import ssl  # noqa: PLC0415 (only for a config with TLS)

    class Dispatcher(ssl.SSLContext):
        def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
            source.current()
            return super().wrap_socket(*args, **kwargs)

        def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:  # asyncio's way in
            source.current()
            return super().wrap_bio(*args, **kwargs)

    return Dispatcher(ssl.PROTOCOL_TLS_SERVER)


def _copy_policy(src: ssl.SSLContext, dst: ssl.SSLContext) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dst.minimum_version = src.minimum_version
        dst.maximum_version = src.maximum_version
        dst.options = src.options
    dst.verify_mode = src.verify_mode


class WebConfigSource:
    """The current web config, re-read when the config file or any file it names (cert,
    key, CA) changed (by st_mtime_ns, st_size and st_ino of each), checked at most once
    per `min_interval` seconds.  A re-read that fails keeps the last good config and logs
    the error once (a failed reading is tried again when one of its files changes, or on
    reload()).  A rewrite that keeps a file's size, inode and timestamp goes unseen until
    reload(), which compares contents.

    `path` None: no config, plain HTTP, no auth.  A bad file at start raises
    WebConfigError.  current() and reload() are thread-safe; reload() may be called from a
    signal handler."""

    def __init__(self, path: str | None, min_interval: float = 1.0) -> None:
        self._path = path
        self._min_interval = max(0.0, min_interval)
        self._lock = threading.RLock()
        self._watch: dict[str, tuple[int, int, int] | None] = {}
        self._digest = b""
        self._config = _NO_CONFIG
        if path is not None:
            loader = _Loader(path)
            self._config, self._digest = loader.load()
            self._watch = loader.stats
        self._last_tls = self._config.tls
        self._tls_at_start = self._last_tls is not None
        self._dispatcher: ssl.SSLContext | None = None
        self._last_check = time.monotonic()

    def current(self) -> WebConfig:
        """The config now in force, after a check for changed files when min_interval
        has passed since the last one.  While another thread re-reads, the config in force
        is returned without waiting."""
        if self._path is None or time.monotonic() - self._last_check < self._min_interval:
            return self._config
        if not self._lock.acquire(blocking=False):
            return self._config
        try:
            now = time.monotonic()
            if now - self._last_check >= self._min_interval:
                self._last_check = now
                if any(_stat(name) != seen for name, seen in self._watch.items()):
                    self._reread()
        finally:
            self._lock.release()
        return self._config

    def reload(self) -> bool:
        """Re-read now, whether or not a file seems changed (SIGHUP).  True when a new good
        config is in force; False when nothing changed or the reading failed (then it is
        logged and the last good config kept)."""
        if self._path is None:
            return False
        with self._lock:
            self._last_check = time.monotonic()
            return self._reread()

    def server_context(self) -> ssl.SSLContext | None:
        """The context to listen with: None when the config at start has no TLS (a config
        that turns TLS on later needs a restart).  Otherwise one context, made once, that
        hands each handshake to the current config's context, so a rotated certificate
        is served from the next connection on.  When a later config drops TLS, the last
        TLS context stays in use: going back to plain HTTP needs a restart."""
        if not self._tls_at_start:
            return None
        with self._lock:
            if self._dispatcher is None:
                assert self._last_tls is not None
                dispatcher = _dispatcher(self)
                _no_tickets(dispatcher)
                _copy_policy(self._last_tls, dispatcher)
                dispatcher.sni_callback = self._hand_over
                self._dispatcher = dispatcher
            return self._dispatcher

    def _hand_over(self, sslobj: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
        tls = self.current().tls or self._last_tls
        assert tls is not None  # a dispatcher exists only when the config at start had TLS
        sslobj.context = tls

    def _reread(self) -> bool:
        assert self._path is not None
        loader = _Loader(self._path)
        try:
            config, digest = loader.load()
        except WebConfigError as err:
            self._watch = loader.stats
            log.warning(
                "cannot re-read the web config, keeping the last good one", extra={"file": err.file, "err": err.reason}
            )
            return False
        self._watch = loader.stats
        if digest == self._digest:
            return False
        self._config, self._digest = config, digest
        if config.tls is not None:
            self._last_tls = config.tls
            if self._dispatcher is not None:
                _copy_policy(config.tls, self._dispatcher)
        log.info("web config re-read", extra={"file": loader.path, "tls": config.tls is not None})
        return True


# -- basic auth ----------------------------------------------------------------------------


def _credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """(user, password) from "Basic base64(user:password)", or None when malformed."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        password.decode("utf-8")
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _cost(hashed: bytes) -> int:
    try:
        return min(31, max(4, int(hashed[4:6])))
    except ValueError:
        return 4


def _hmac() -> ModuleType:
    """The hmac module, imported with basic auth only: it loads OpenSSL."""
    import hmac  # noqa: PLC0415

    return hmac


class Authenticator:
    """HTTP basic auth against WebConfig.users with bcrypt.

    The user name is compared with every configured one in constant time; an unknown user
    costs a bcrypt check against a dummy hash (of the configured users' highest cost), so
    the time taken does not tell which users exist.  Verdicts are kept in a bounded LRU
    cache keyed by user, hash and a keyed SHA-256 of the password, so a flood of the same
    credentials costs one bcrypt check.  A password longer than 72 bytes never matches.
    check() is thread-safe; it takes as long as bcrypt does (50-250 ms at usual costs)
    when the credentials are not in the cache."""

    def __init__(self, cache_size: int = 1024) -> None:
        self._size = max(0, cache_size)
        self._cache: OrderedDict[tuple[str, bytes, bytes], bool] = OrderedDict()
        self._lock = threading.Lock()
        self._key = os.urandom(32)  # the cache holds no plain hash of a password

    def check(self, config: WebConfig, authorization: str | None) -> bool:
        """True when no users are configured, or the Authorization header carries a
        configured user and the right password; False otherwise, never an exception."""
        users = config.users
        if not users:
            return True
        hmac = _hmac()

        credentials = _credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        if len(password) > _MAX_PASSWORD:
            return False
        wanted = user.encode("utf-8")
        found: bytes | None = None
        cost = 4
        for name, hashed in users.items():
            match = hmac.compare_digest(name.encode("utf-8"), wanted)
            found = hashed if match else found
            cost = max(cost, _cost(hashed))
        target = found if found is not None else b"$2b$%02d$%s" % (cost, b"." * 53)
        key = (user, target, hmac.new(self._key, password, "sha256").digest())
        with self._lock:
            verdict = self._cache.get(key)
            if verdict is not None:
                self._cache.move_to_end(key)
                return verdict
        try:
            import bcrypt  # noqa: PLC0415 (only with basic auth configured)

            verdict = bcrypt.checkpw(password, target) and found is not None
        except ValueError:  # a hash this bcrypt cannot read
            verdict = False
        if self._size:
            with self._lock:
                self._cache[key] = verdict
                self._cache.move_to_end(key)
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return verdict
