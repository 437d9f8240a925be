"""HTTP basic auth against a config's users, with bcrypt.

Split in two so that a server can keep bcrypt off its event loop and bounded:
`Authenticator.verdict` answers at once from what is known (no users, a malformed
header, a password over 72 bytes, a verdict in the cache) or says which bcrypt check is
needed; `Authenticator.verify` runs that check (50-500 ms at usual costs) and remembers
its verdict.  `check` is both, for callers that may block.

The user name is compared with every configured one in constant time; an unknown user
costs a bcrypt check against a dummy hash of the configured cost (the highest, when the
users' costs differ), so the time taken does not tell which users exist.  Verdicts are
kept in two bounded LRU caches, the right passwords apart from the wrong ones (a flood of
wrong passwords never pushes a right one out), keyed by user, hash and an HMAC of the
password under a key made at start (the cache holds no plain hash of a password).  A
password longer than 72 bytes never matches (as in Go's bcrypt since 2022, and bcrypt >=
5 in Python)."""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

from host_pm_exporter.webconfig.schema import WebConfig

_MAX_PASSWORD = 72  # bcrypt's limit
_BCRYPT_ALPHABET = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

_Key = tuple[str, bytes, bytes]


@dataclass(frozen=True)
class Check:
    """A bcrypt check to run: `password` against `target` (a user's hash, or the dummy
    for an unknown user)."""

    key: _Key
    password: bytes
    target: bytes
    known: bool


def credentials(authorization: str | None) -> tuple[str, bytes] | None:
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


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = max(0, size)
        self.items: OrderedDict[_Key, None] = OrderedDict()

    def hit(self, key: _Key) -> bool:
        if key in self.items:
            self.items.move_to_end(key)
            return True
        return False

    def add(self, key: _Key) -> None:
        if not self.size:
            return
        self.items[key] = None
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


class Authenticator:
    """Basic auth with bcrypt and a verdict cache; thread-safe."""

    def __init__(self, cache_size: int = 1024) -> None:
        self._right = _LRU(cache_size)
        self._wrong = _LRU(cache_size)
        self._lock = threading.Lock()
        self._key = os.urandom(32)
        salt = bytes(_BCRYPT_ALPHABET[b % 64] for b in os.urandom(22))
        self._dummy_tail = (
            salt[:21]
            + b".Oeu"[salt[21] % 4 : salt[21] % 4 + 1]
            + bytes(_BCRYPT_ALPHABET[b % 64] for b in os.urandom(31))
        )

    def verdict(self, config: WebConfig, authorization: str | None) -> bool | Check:
        """True or False when it is known without bcrypt; otherwise the Check to run."""
        users = config.users
        if not users:
            return True
        found = credentials(authorization)
        if found is None:
            return False
        user, password = found
        if len(password) > _MAX_PASSWORD:
            return False
        wanted = user.encode("utf-8")
        target: bytes | None = None
        cost = 4
        for name, hashed in users.items():  # every name, no early exit
            match = hmac.compare_digest(name.encode("utf-8"), wanted)
            target = hashed if match else target
            cost = max(cost, _cost(hashed))
        known = target is not None
        if target is None:
            target = b"$2b$%02d$%s" % (cost, self._dummy_tail)
        key = (user, target, hmac.new(self._key, password, "sha256").digest())
        with self._lock:
            if self._right.hit(key):
                return True
            if self._wrong.hit(key):
                return False
        return Check(key, password, target, known)

    def verify(self, check: Check) -> bool:
        """Run the bcrypt check and remember its verdict."""
        import bcrypt  # noqa: PLC0415 (loaded with the first check: only basic auth needs it, ~0.5 MiB)

        try:
            right = bcrypt.checkpw(check.password, check.target) and check.known
        except ValueError:  # a hash this bcrypt cannot read
            right = False
        with self._lock:
            (self._right if right else self._wrong).add(check.key)
        return right

    def check(self, config: WebConfig, authorization: str | None) -> bool:
        """True when no users are configured, or the Authorization header carries a
        configured user and the right password; False otherwise, never an exception.
        Takes as long as bcrypt does when the verdict is not in the cache."""
        verdict = self.verdict(config, authorization)
        return verdict if isinstance(verdict, bool) else self.verify(verdict)
