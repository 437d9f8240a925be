"""The live web config: read at start, re-read when the file or a file it names changes
(or on SIGHUP), the last good one kept when a re-read fails."""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time

from host_pm_exporter.webconfig import tls
from host_pm_exporter.webconfig.schema import NO_CONFIG, Loader, WebConfig, WebConfigError, file_stat

log = logging.getLogger("host_pm_exporter.webconfig")

_Stats = dict[str, "tuple[int, int, int] | None"]


def _read(path: str) -> tuple[WebConfig, bytes, _Stats]:
    """One reading: the config, the digest of its files and their stats.  Raises
    WebConfigError, with the stats of the files read so far in `.stats`."""
    import yaml  # noqa: PLC0415 (only a server with a web config reads YAML: ~1.3 MiB)

    loader = Loader(path)
    try:
        settings = loader.load()
        config = WebConfig(
            tls=None if settings.tls is None else tls.context(settings.tls, loader),
            users=settings.users,
            headers=settings.headers,
            client_auth="NoClientCert" if settings.tls is None else settings.tls.client_auth,
        )
    except WebConfigError as err:
        err.stats = loader.stats
        raise
    except (ValueError, TypeError, RecursionError, yaml.YAMLError) as err:  # a NUL in a path, say
        error = loader.unreadable(err)
        error.stats = loader.stats
        raise error from None
    return config, loader.digest(), loader.stats


def load_web_config(path: str) -> WebConfig:
    """Read, check and build the web config in `path`: the SSLContext with its
    certificate, key and client CAs loaded.  Raises WebConfigError."""
    return _read(path)[0]


class WebConfigSource:
    """The current web config, re-read when the config file or any file it names (cert,
    key, CA) changed (by st_mtime_ns, st_size and st_ino of each), checked at most once
    per `min_interval` seconds.  A re-read that fails keeps the last good config and logs
    the error once (a failed reading is tried again when one of its files changes, or on
    reload()).  A rewrite that keeps a file's size, inode and timestamp goes unseen until
    reload(), which compares contents.

    `path` None: no config, plain HTTP, no auth.  A bad file at start raises
    WebConfigError.  current() and reload() are thread-safe."""

    def __init__(self, path: str | None, min_interval: float = 1.0) -> None:
        self._path = path
        self._min_interval = max(0.0, min_interval)
        self._lock = threading.RLock()
        self._watch: _Stats = {}
        self._digest = b""
        self._config = NO_CONFIG
        if path is not None:
            self._config, self._digest, self._watch = _read(path)
        self._last_tls = self._config.tls
        self._tls_at_start = self._last_tls is not None
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
                if any(file_stat(name) != seen for name, seen in self._watch.items()):
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

    def tls_context(self) -> ssl.SSLContext | None:
        """The context to wrap a new connection with: the current config's, so that a
        rotated certificate or a new client certificate rule applies from the next
        connection on, and a TLS 1.2 session is resumed only under the config that made
        it.  None when the config at start has no TLS (turning TLS on needs a restart);
        when a later config drops TLS, the last TLS context stays in use (going back to
        plain HTTP needs a restart too)."""
        if not self._tls_at_start:
            return None
        return self.current().tls or self._last_tls

    def _reread(self) -> bool:
        assert self._path is not None
        try:
            config, digest, self._watch = _read(self._path)
        except WebConfigError as err:
            self._watch = err.stats
            log.warning(
                "cannot re-read the web config, keeping the last good one", extra={"file": err.file, "err": err.reason}
            )
            return False
        if digest == self._digest:
            return False
        self._config, self._digest = config, digest
        if config.tls is not None:
            self._last_tls = config.tls
        log.info("web config re-read", extra={"file": os.path.abspath(self._path), "tls": config.tls is not None})
        return True
