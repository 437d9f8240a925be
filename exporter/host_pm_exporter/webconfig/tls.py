"""TLS for the server: the context built from a config's settings.  The server wraps
each new connection with the current config's context (`WebConfigSource.tls_context`).

A resumed session skips the client certificate check, so a session made under an older,
laxer config must never be resumed under a stricter one.  No session tickets (TLS 1.3,
nor TLS 1.2 by ticket); TLS 1.2 sessions by session ID are resumed, but only within the
context that made them: OpenSSL keeps that cache per context, and each reading of the
config is a new context, so after any change every client makes a full handshake
(tests/webconfig/test_webconfig.py and tests/web/test_http_attacks.py check both versions)."""

from __future__ import annotations

import ssl
import warnings
from typing import NoReturn

from host_pm_exporter.webconfig.schema import Loader, TLSSettings

_WHERE = "tls_server_config"


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> NoReturn:
    # Without a callback, OpenSSL would prompt on the terminal for an encrypted key.
    raise _EncryptedKey


def context(tls: TLSSettings, loader: Loader) -> ssl.SSLContext:
    """The server context of these settings, with its certificate, key and client CAs
    loaded; each file is read through `loader` (which stats and hashes it) before
    OpenSSL loads it.  Raises WebConfigError."""
    loader.read(tls.cert_file, f"{_WHERE}.cert_file")
    loader.read(tls.key_file, f"{_WHERE}.key_file")
    if tls.client_ca_file is not None:
        loader.read(tls.client_ca_file, f"{_WHERE}.client_ca_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 and 1.1 are deprecated
        ctx.minimum_version = tls.min_version
        ctx.maximum_version = tls.max_version
    if tls.prefer_server_ciphers:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    no_tickets(ctx)
    if tls.ciphers:
        _set_ciphers(ctx, tls.ciphers, loader)
    _load_cert(ctx, tls, loader)
    if tls.client_ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        except OSError as err:
            loader.bad_file(tls.client_ca_file, f"{_WHERE}.client_ca_file", f"not PEM certificates{_ssl_reason(err)}")
    ctx.verify_mode = tls.verify_mode
    return ctx


def _set_ciphers(ctx: ssl.SSLContext, ciphers: tuple[str, ...], loader: Loader) -> None:
    where = f"{_WHERE}.cipher_suites"
    try:
        ctx.set_ciphers(":".join(ciphers))
    except ssl.SSLError:
        loader.bad(f"{where}: none is available in this OpenSSL")
    available = {c["name"] for c in ctx.get_ciphers()}
    missing = [c for c in ciphers if c not in available]
    if missing:
        loader.bad(f"{where}: {', '.join(missing)} not available in this OpenSSL")


def _load_cert(ctx: ssl.SSLContext, tls: TLSSettings, loader: Loader) -> None:
    cert_key, key_key = f"{_WHERE}.cert_file", f"{_WHERE}.key_file"
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file, password=_no_passphrase)
    except _EncryptedKey:
        loader.bad_file(tls.key_file, key_key, "the key is encrypted; a passphrase is not supported")
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            loader.bad_file(tls.key_file, key_key, f"does not match the certificate in {tls.cert_file}")
        if not _has_certificates(tls.cert_file):
            loader.bad_file(tls.cert_file, cert_key, f"not a PEM certificate{_ssl_reason(err)}")
        loader.bad_file(tls.key_file, key_key, f"not a PEM private key{_ssl_reason(err)}")
    except OSError as err:  # gone since it was read
        loader.bad_file(tls.cert_file, cert_key, f"cannot load it and its key{_ssl_reason(err)}")


def no_tickets(ctx: ssl.SSLContext) -> None:
    """No session tickets: no TLS 1.3 resumption, nor TLS 1.2 by ticket (see above).  A
    full handshake per connection is cheap next to a scrape."""
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0


def _has_certificates(path: str) -> bool:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except OSError:
        return False
    return True


def _ssl_reason(err: OSError) -> str:
    """' (what OpenSSL says)', or '' when it says no more than 'PEM lib'."""
    if isinstance(err, ssl.SSLError):
        return f" ({str(err.reason).replace('_', ' ').lower()})" if err.reason else ""
    return f" ({err.strerror or err})"
