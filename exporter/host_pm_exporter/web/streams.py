"""A connection's bytes: plain TCP, or TLS driven here through `ssl.MemoryBIO`.

asyncio's own TLS (`ssl=` on a server) is not used: it allocates a 256 KiB read buffer
per connection as soon as the connection is accepted, before the handshake (a thousand
idle connections: 256 MB, and most of it stays in the allocator after they close), and
it hands a connection to the server only once the handshake is done, so connections in
their handshake escape the connection cap.  Here a TLS connection is a plain one until
its first byte: no OpenSSL object exists for a connection that sends nothing, the
handshake has its own deadline, and the reads go through the one stream reader with its
own bounded buffer (`_READ`)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

_READ = 16 * 1024  # one read from the socket; a TLS record is at most 16 KiB of plaintext


class PeerReader(asyncio.StreamReader):
    """A StreamReader that says when the peer closed, even with bytes still unread
    (`at_eof` waits for those): work for a client that left is not started."""

    peer_closed = False

    def feed_eof(self) -> None:
        self.peer_closed = True
        super().feed_eof()

    def set_exception(self, exc: Exception) -> None:
        self.peer_closed = True
        super().set_exception(exc)


class Closed(Exception):
    """The connection is done: the peer left, it was reset, or a TLS error."""


class Stream:
    """Plain TCP."""

    def __init__(self, reader: PeerReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @property
    def peer_closed(self) -> bool:
        return self.reader.peer_closed

    async def handshake(self) -> None:
        """Nothing to do on plain TCP."""

    async def read(self) -> bytes:
        """Some bytes, or b"" when the peer closed."""
        return await self.reader.read(_READ)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def unsent(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    async def drain(self) -> None:
        await self.writer.drain()

    def end(self) -> None:
        """Send what ends the stream (a TLS close_notify; on TCP, a FIN when it can)."""
        if self.writer.can_write_eof():
            self.writer.write_eof()

    def abort(self) -> None:
        self.writer.transport.abort()

    def close(self) -> None:
        self.writer.close()


class TLSStream(Stream):
    """TLS over the plain stream, through a pair of memory BIOs."""

    def __init__(self, reader: PeerReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        super().__init__(reader, writer)
        self.context = context
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls: ssl.SSLObject | None = None
        self._ended = False

    async def handshake(self) -> None:
        """The TLS handshake; raises Closed when the peer leaves or TLS fails (a bad
        client certificate: the alert is sent first)."""
        first = await self.reader.read(_READ)
        if not first:
            raise Closed("closed before the handshake")
        self._tls = self.context.wrap_bio(self._in, self._out, server_side=True)
        self._in.write(first)
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                await self._fill()
            except (ssl.SSLError, ValueError) as err:
                self._flush()  # the alert, so that the client learns why
                raise Closed(f"TLS handshake: {err}") from None
            else:
                self._flush()
                return

    async def read(self) -> bytes:
        assert self._tls is not None
        while True:
            try:
                data = self._tls.read(_READ)
            except ssl.SSLWantReadError:
                self._flush()  # a read may answer the peer (a key update, an alert)
                if not await self._fill(eof_ok=True):
                    return b""
                continue
            except ssl.SSLZeroReturnError:
                return b""  # close_notify
            except ssl.SSLError as err:
                self._flush()
                raise Closed(f"TLS: {err}") from None
            self._flush()
            return data

    def write(self, data: bytes) -> None:
        assert self._tls is not None
        view = memoryview(data)
        while view:
            try:
                sent = self._tls.write(view)
            except ssl.SSLError as err:
                raise Closed(f"TLS: {err}") from None
            view = view[sent:]
        self._flush()

    def end(self) -> None:
        if self._tls is None or self._ended:
            return
        self._ended = True
        with contextlib.suppress(ssl.SSLError):  # the peer's close_notify has not come: ours is sent
            self._tls.unwrap()
        self._flush()

    def close(self) -> None:
        """A close_notify, then the TCP close (an abort sends neither)."""
        self.end()
        super().close()

    async def _fill(self, eof_ok: bool = False) -> bool:
        data = await self.reader.read(_READ)
        if not data:
            if eof_ok:
                return False
            raise Closed("closed during the handshake")
        self._in.write(data)
        return True

    def _flush(self) -> None:
        if self._out.pending:
            self.writer.write(self._out.read())

    def peer_certificate(self) -> dict[str, Any] | None:
        return None if self._tls is None else self._tls.getpeercert()
