"""A stand-in for systemd-logind on a private bus: owns org.freedesktop.login1 and
answers the Manager's Can* methods with the words given on the command line.

usage: python -m tests.helpers.fake_logind BUS_ADDRESS CanSuspend=yes CanHibernate=na ...

An answer ``error`` replies with a D-Bus error, ``hang`` never replies, ``unknown``
replies as a logind without that method does.  Prints ``ready`` once the name is owned.
"""

from __future__ import annotations

import sys

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

INTERFACE = "org.freedesktop.login1.Manager"


def main() -> None:
    address = sys.argv[1]
    answers = dict(arg.split("=", 1) for arg in sys.argv[2:])
    with open_dbus_connection(address) as conn:
        reply = conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.login1"))
        if reply.body != (1,):  # 1: DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
            sys.exit(f"could not own the name: {reply.body}")
        print("ready", flush=True)
        while True:
            msg = conn.receive()
            header = msg.header
            if header.message_type != MessageType.method_call:
                continue
            member = header.fields.get(HeaderFields.member)
            interface = header.fields.get(HeaderFields.interface)
            answer = answers.get(member, "unknown") if interface == INTERFACE else "unknown"
            if answer == "hang":
                continue
            if answer == "unknown":
                conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no {member}",)))
            elif answer == "error":
                conn.send(new_error(msg, "org.freedesktop.DBus.Error.AccessDenied", "s", ("denied",)))
            else:
                conn.send(new_method_return(msg, "s", (answer,)))


if __name__ == "__main__":
    main()
