"""The logind probe: org.freedesktop.login1.Manager Can* over the system D-Bus.

logind answers ``yes``, ``challenge`` (allowed after authentication), ``no`` (the
sleep state works but policy forbids it) or ``na`` (not supported).  yes and challenge
count as supported; an error leaves the operation unknown.  The bus is the one
``DBUS_SYSTEM_BUS_ADDRESS`` names, else /run/dbus/system_bus_socket.
"""

from __future__ import annotations

import os
import socket
import time

from jeepney import DBusAddress, MessageType, new_method_call
from jeepney.bus import get_bus
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import DBusConnection, DBusConnectionBase, Proxy, prep_socket
from jeepney.io.common import MessageFilters
from jeepney.wrappers import DBusErrorResponse

from host_pm_exporter.probes import ProbeResult, log_outcome

METHODS = {
    "suspend": "CanSuspend",
    "hibernate": "CanHibernate",
    "suspend_hybrid": "CanHybridSleep",
    "suspend_then_hibernate": "CanSuspendThenHibernate",
}
ANSWERS = ("yes", "challenge", "no", "na")
_UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"


def bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")


def run(timeout: float, address: str | None = None) -> ProbeResult:
    """Ask logind, giving up after `timeout` seconds."""
    start = time.monotonic()
    result = ProbeResult("logind")
    try:
        result.error = _ask(address or bus_address(), start + timeout, result)
    except Exception as err:
        result.error = f"{type(err).__name__}: {err}"
    result.duration = time.monotonic() - start
    log_outcome(result)
    return result


def _ask(address: str, deadline: float, result: ProbeResult) -> str | None:

    manager = DBusAddress(
        "/org/freedesktop/login1",
        bus_name="org.freedesktop.login1",
        interface="org.freedesktop.login1.Manager",
    )
    try:
        sock = prep_socket(get_bus(address), timeout=_left(deadline))
    except (OSError, ValueError) as err:
        result.absent = isinstance(err, FileNotFoundError)  # no socket there: no system bus
        return f"system D-Bus not reachable at {address}: {err}"
    try:
        conn = _Connection(sock, _left(deadline))
    except (OSError, DBusErrorResponse) as err:  # TimeoutError included
        sock.close()
        return f"system D-Bus at {address} did not answer Hello: {err or 'timed out'}"
    errors = []
    with conn:
        for operation, method in METHODS.items():
            left = _left(deadline)
            if left <= 0:
                errors.append(f"{method}: timed out")
                break
            try:
                reply = conn.send_and_get_reply(new_method_call(manager, method), timeout=left)
            except TimeoutError:
                errors.append(f"{method}: timed out")
                break
            if reply.header.message_type == MessageType.error:
                name = reply.header.fields.get(4, "error")  # 4: ERROR_NAME header field
                if name == _UNKNOWN_METHOD:  # an older logind without this operation
                    result.raw[operation] = "na"
                    result.answers[operation] = False
                    continue
                errors.append(f"{method}: {name}")
                continue
            answer = reply.body[0] if reply.body else ""
            if answer not in ANSWERS:
                errors.append(f"{method}: unexpected answer {str(answer)[:40]!r}")
                continue
            result.raw[operation] = answer
            result.answers[operation] = answer in ("yes", "challenge")
    return "; ".join(errors) if errors else None


class _Connection(DBusConnection):  # type: ignore[misc]
    """jeepney's blocking connection, but its Hello to the bus is bounded in time:
    a bus that authenticates and then says nothing must not hold the probe forever."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        DBusConnectionBase.__init__(self, sock, enable_fds=False)
        self._filters = MessageFilters()
        self.bus_proxy = Proxy(message_bus, self, timeout=max(0.001, timeout))
        self.unique_name = self.bus_proxy.Hello()[0]


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
