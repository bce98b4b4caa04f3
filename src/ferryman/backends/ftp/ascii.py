"""ASCII mode (TYPE A, RFC 959 section 3.1.1.1): text with CRLF line ends on the wire.

The server converts its own line ends to CRLF and back; the client does the same for the local
convention, which on POSIX is LF: CRLF becomes LF when reading, a lone LF becomes CRLF when
writing (as ftplib's ``retrlines``/``storlines`` do). Sizes differ between the two sides by
design, so an ASCII copy is checked by the server's 2xx reply and the byte counts, never by
comparing sizes, and it is never resumed at an offset.
"""

from __future__ import annotations

from ..base import ReadStream, WriteStream

__all__ = ["AsciiReadStream", "AsciiWriteStream", "crlf_to_lf", "lf_to_crlf"]

_CR, _LF = 13, 10


def crlf_to_lf(data: bytes, pending_cr: bool) -> tuple[bytes, bool]:
    """Convert one chunk; ``pending_cr``: the previous chunk ended with a CR held back."""
    if pending_cr:
        data = b"\r" + data
    hold = data.endswith(b"\r")
    if hold:
        data = data[:-1]  # it may be the first half of a CRLF split across chunks
    return data.replace(b"\r\n", b"\n"), hold


def lf_to_crlf(data: bytes, last_was_cr: bool) -> tuple[bytes, bool]:
    """Convert one chunk: a LF not already preceded by CR becomes CRLF."""
    if not data:
        return data, last_was_cr
    out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if last_was_cr and data[0] == _LF:
        out = out[1:]  # the CR of this CRLF was at the end of the previous chunk
    return out, data[-1] == _CR


class AsciiReadStream(ReadStream):
    """Reads a TYPE A download and hands out text with LF line ends."""

    def __init__(self, raw: ReadStream) -> None:
        self.raw = raw
        self._pending_cr = False
        self._out = b""
        self._eof = False

    def readinto(self, buffer: memoryview) -> int:
        while not self._out and not self._eof:
            chunk = self.raw.read(max(len(buffer), 65536))
            if not chunk:
                self._eof = True
                self._out = b"\r" if self._pending_cr else b""  # a lone CR at the very end
                self._pending_cr = False
                break
            self._out, self._pending_cr = crlf_to_lf(chunk, self._pending_cr)
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        self.bytes_transferred += n
        return n

    def close(self) -> None:
        self.raw.close()

    def abort(self) -> None:
        self.raw.abort()


class AsciiWriteStream(WriteStream):
    """Sends text as TYPE A: line ends become CRLF on the wire."""

    def __init__(self, raw: WriteStream) -> None:
        self.raw = raw
        self._last_was_cr = False

    def write(self, data: bytes | memoryview) -> None:
        converted, self._last_was_cr = lf_to_crlf(bytes(data), self._last_was_cr)
        self.raw.write(converted)
        self.bytes_transferred += len(data)

    def close(self) -> None:
        self.raw.close()

    def abort(self) -> None:
        self.raw.abort()
