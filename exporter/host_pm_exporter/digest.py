"""SHA-256 from CPython's own implementation, not OpenSSL's.

`hashlib` loads OpenSSL's libcrypto as it is imported: 3.5 MiB of resident memory for an
exporter that otherwise needs no cryptography (no TLS, no basic auth).  CPython ships
its own SHA-256 (``_sha2`` since 3.12, ``_sha256`` before), which hashlib itself falls
back on; it is used where there is one, hashlib's otherwise.  The digests are the same.
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _constructor() -> Callable[..., Hash]:
    for module in ("_sha2", "_sha256"):
        try:
            return importlib.import_module(module).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib  # noqa: PLC0415 (a build without CPython's own hashes)

    return hashlib.sha256


sha256 = _constructor()
