"""The web config file read into objects: YAML in exporter-toolkit's web-config.yml
format, checked key by key as strictly as exporter-toolkit does (an unknown key, a value
of the wrong type, a duplicated key or a file that cannot be loaded is a
`WebConfigError`).  `Loader` reads each file once, keeping its stat and a digest of its
contents, so that a source can tell when any of them changed.  Building the TLS context
from these settings is `tls`'s job."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import ssl
import stat
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import yaml


_MAX_CONFIG_BYTES = 1 << 20  # a web config is a few lines; anything this large is a mistake

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,  # Go does not verify it; Python does
    "RequireAnyClientCert": ssl.CERT_REQUIRED,  # idem
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

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
        self.stats: dict[str, tuple[int, int, int] | None] = {}  # the files read until then
        super().__init__(f"{file}: {self.reason}")


@dataclass(frozen=True)
class WebConfig:
    """One reading of the web config, as the server uses it."""

    tls: ssl.SSLContext | None  # server-side context, or None for plain HTTP
    users: Mapping[str, bytes]  # user -> bcrypt hash; empty: no auth
    headers: tuple[tuple[str, str], ...]  # extra response headers
    client_auth: str  # client_auth_type as configured, "NoClientCert" when none


NO_CONFIG = WebConfig(tls=None, users=MappingProxyType({}), headers=(), client_auth="NoClientCert")


def file_stat(path: str) -> tuple[int, int, int] | None:
    """(st_mtime_ns, st_size, st_ino), or None when it cannot be had."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _type_name(value: object) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(value), "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else "a value"
    )


@dataclass(frozen=True)
class TLSSettings:
    """tls_server_config, checked: paths resolved, names mapped to ssl's."""

    cert_file: str
    key_file: str
    client_auth: str
    verify_mode: ssl.VerifyMode
    client_ca_file: str | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: tuple[str, ...]  # OpenSSL names; empty: OpenSSL's defaults
    prefer_server_ciphers: bool


@dataclass(frozen=True)
class Settings:
    """The whole file, checked; the TLS context is still to be built (`tls.context`)."""

    tls: TLSSettings | None
    users: Mapping[str, bytes]  # user -> bcrypt hash; empty: no auth
    headers: tuple[tuple[str, str], ...]


class Loader:
    """One reading of a web config.  `stats` are the files read so far, each as it was
    just before it was read (also after a failure: a source then waits for one of them to
    change before it tries again); `digest` covers their contents."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.base = os.path.dirname(self.path)
        self.stats: dict[str, tuple[int, int, int] | None] = {}
        self._digest = hashlib.sha256()

    # -- errors and files

    def bad(self, reason: str) -> NoReturn:
        raise WebConfigError(self.path, reason)

    def bad_file(self, path: str, key: str, reason: str) -> NoReturn:
        raise WebConfigError(path, f"{key} of {self.path}: {reason}")

    def read(self, path: str, key: str | None, limit: int | None = None) -> bytes:

        def fail(reason: str) -> NoReturn:
            if key is None:
                self.bad(reason)
            self.bad_file(path, key, reason)

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
            self.bad(f"{where} must be a mapping, not {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or key not in keys:
                if where == "tls_server_config" and key in _UNSUPPORTED_TLS_KEYS:
                    self.bad(f"{where}.{key} is not supported by this exporter")
                prefix = f"{where}." if where != "the file" else ""
                self.bad(f"unknown key {prefix}{key} (known: {', '.join(keys)})")
        return value

    def _string(self, section: dict[str, Any], key: str, where: str) -> str | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.bad(f"{where}.{key} must be a string, not {_type_name(value)}")
        return value

    def _choice(self, section: dict[str, Any], key: str, where: str, choices: Mapping[str, Any]) -> str | None:
        value = self._string(section, key, where)
        if value is not None and value not in choices:
            self.bad(f"{where}.{key}: unknown value {value!r} (one of {', '.join(choices)})")
        return value

    # -- the sections

    def digest(self) -> bytes:
        """The SHA-256 of every file read so far, with its path."""
        return self._digest.digest()

    def load(self) -> Settings:
        """The settings in the file; every failure is a WebConfigError (a NUL in a path,
        YAML nested past Python's recursion limit included)."""
        import yaml  # noqa: PLC0415 (only a server with a web config reads YAML: ~1.3 MiB)

        try:
            return self._load()
        except (ValueError, TypeError, RecursionError, yaml.YAMLError) as err:
            raise self.unreadable(err) from None

    def unreadable(self, err: Exception) -> WebConfigError:
        return WebConfigError(self.path, f"cannot be read: {type(err).__name__}: {str(err)[:200]}")

    def _load(self) -> Settings:
        import yaml  # noqa: PLC0415 (see load)

        raw = self.read(self.path, None, _MAX_CONFIG_BYTES)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            self.bad(f"not UTF-8 text (byte {err.start})")
        loader = _strict_loader()(text)
        try:
            doc = loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            self.bad(f"not valid YAML: {err.problem or err.context}{at}")
        except yaml.YAMLError as err:
            self.bad(f"not valid YAML: {err}")
        finally:
            loader.dispose()
        top = self._mapping(doc, "the file", _TOP_KEYS)
        tls_section = top.get("tls_server_config")
        return Settings(
            tls=None if tls_section is None else self._tls(tls_section),
            headers=self._headers(self._mapping(top.get("http_server_config"), "http_server_config", _HTTP_KEYS)),
            users=self._users(top.get("basic_auth_users")),
        )

    def _tls(self, value: object) -> TLSSettings:
        where = "tls_server_config"
        section = self._mapping(value, where, _TLS_KEYS)
        cert = self._string(section, "cert_file", where)
        key = self._string(section, "key_file", where)
        if not cert:
            self.bad(f"{where}.cert_file is required")
        if not key:
            self.bad(f"{where}.key_file is required")
        client_auth = self._choice(section, "client_auth_type", where, _CLIENT_AUTH) or "NoClientCert"
        verify_mode = _CLIENT_AUTH[client_auth]
        ca = self._string(section, "client_ca_file", where) or None
        if verify_mode != ssl.CERT_NONE and ca is None:
            self.bad(f"{where}.client_auth_type {client_auth} needs client_ca_file")
        low = _TLS_VERSIONS[self._choice(section, "min_version", where, _TLS_VERSIONS) or "TLS12"]
        high_name = self._choice(section, "max_version", where, _TLS_VERSIONS)
        high = ssl.TLSVersion.MAXIMUM_SUPPORTED if high_name is None else _TLS_VERSIONS[high_name]
        if high_name is not None and low > high:
            self.bad(f"{where}.min_version is above max_version")
        prefer = section.get("prefer_server_cipher_suites", True)
        if prefer is None:
            prefer = True
        if not isinstance(prefer, bool):
            self.bad(f"{where}.prefer_server_cipher_suites must be true or false, not {_type_name(prefer)}")
        return TLSSettings(
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
            self.bad(f"{where}.cipher_suites must be a list, not {_type_name(value)}")
        names: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.bad(f"{where}.cipher_suites: {item!r} is not a string")
            if item in _TLS13_SUITES:
                continue  # TLS 1.3's suites are not configurable
            if item not in CIPHER_SUITES:
                self.bad(f"{where}.cipher_suites: unknown or unsupported cipher suite {item!r}")
            if CIPHER_SUITES[item] not in names:
                names.append(CIPHER_SUITES[item])
        if value and not names:
            self.bad(f"{where}.cipher_suites names no TLS 1.2 suite (TLS 1.3's are not configurable)")
        return tuple(names)

    def _headers(self, section: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        http2 = section.get("http2")
        if http2 is not None and not isinstance(http2, bool):
            self.bad(f"http_server_config.http2 must be true or false, not {_type_name(http2)}")
        value = section.get("headers")
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.bad(f"http_server_config.headers must be a mapping, not {_type_name(value)}")
        headers: list[tuple[str, str]] = []
        seen: set[str] = set()
        for name, text in value.items():
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                self.bad(f"http_server_config.headers: {name!r} is not a valid header name")
            if name.lower() in _RESERVED_HEADERS:
                self.bad(f"http_server_config.headers: {name} is set by the server and cannot be configured")
            if name.lower() in seen:
                self.bad(f"http_server_config.headers: {name} is given twice")
            seen.add(name.lower())
            if not isinstance(text, str):
                self.bad(f"http_server_config.headers.{name} must be a string, not {_type_name(text)}")
            if not _FIELD_VALUE.fullmatch(text):
                self.bad(f"http_server_config.headers.{name}: the value must be printable ASCII on one line")
            headers.append((name, text.strip(" \t")))
        return tuple(headers)

    def _users(self, value: object) -> Mapping[str, bytes]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            self.bad(f"basic_auth_users must be a mapping, not {_type_name(value)}")
        users: dict[str, bytes] = {}
        for name, hashed in value.items():
            if not isinstance(name, str):
                self.bad(f"basic_auth_users: user name {name!r} is not a string")
            if ":" in name:
                self.bad(f"basic_auth_users: user name {name!r} contains ':', which basic auth cannot carry")
            if not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
                self.bad(f"basic_auth_users.{name}: not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
            users[name] = hashed.encode("ascii")
        return MappingProxyType(users)

    # -- the TLS context


@functools.lru_cache(maxsize=1)
def _strict_loader() -> type[yaml.SafeLoader]:
    """yaml's safe loader that refuses a key given twice (Go's strict YAML does too);
    made on first use, with yaml."""
    import yaml  # noqa: PLC0415 (see Loader.load)

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
            seen: set[Hashable] = set()
            for key_node, _value in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, Hashable):  # an unhashable key is construct_mapping's to refuse
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            "while reading a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                        )
                    seen.add(key)
            return super().construct_mapping(node, deep=True)

    return StrictLoader
