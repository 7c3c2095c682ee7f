"""Framing (docs/protocol.md, "Frame"), sans-I/O.

A frame is ``magic | crc32 | length | payload`` with the header packed as
``<4sII``. This module only turns bytes into payloads and back: it never reads
a socket, so the server, the SDK, tests and fuzzers all drive the same code
(the shape of ``websockets``' and ``h11``'s protocol objects).

The decoder checks the header as soon as its 12 bytes are in, so a frame that
announces an oversize payload is refused before a single payload byte is
awaited or buffered, and it never holds more than one frame's worth of bytes.
"""

from __future__ import annotations

import struct
import zlib

from p2sp.common.exceptions import BadChecksum, BadLength, BadMagic, ProtocolError

MAGIC = b"\xab\xcd\xef\x88"
HEADER = struct.Struct("<4sII")
HEADER_SIZE = HEADER.size  # 12
DEFAULT_MAX_FRAME = 1024 * 1024

_crc32 = zlib.crc32
_pack = HEADER.pack
_unpack_from = HEADER.unpack_from


def encode_frame(payload: bytes) -> bytes:
    """Wrap one payload in a frame header.

    The size limit is the reader's to enforce; a writer that sends an oversize
    frame is told so by its peer.
    """
    return _pack(MAGIC, _crc32(payload), len(payload)) + payload


class FrameDecoder:
    """Incremental frame reader: ``feed(bytes) -> [payload, ...]``.

    After a ``ProtocolError`` the decoder is poisoned: the stream cannot be
    resynchronised (the protocol forbids skipping garbage), so every later
    ``feed`` raises the same error again.
    """

    __slots__ = ("_buf", "_crc", "_error", "_need", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame <= 0:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need = 0  # payload length of the frame being read, 0 while in the header
        self._crc = 0
        #: The error that poisoned the decoder, as (class, message): never the
        #: exception itself, whose traceback would hold the caller's frame (a
        #: connection) in a reference cycle that only a full GC collects.
        self._error: tuple[type[ProtocolError], str] | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Take more bytes; return every payload completed by them, in order."""
        if self._error is not None:
            kind, message = self._error
            raise kind(message)
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        try:
            while True:
                if not self._need:
                    if end - pos < HEADER_SIZE:
                        # Check the magic on a partial header too: an HTTP
                        # request or random bytes are refused at once.
                        if end > pos and not MAGIC.startswith(bytes(buf[pos : pos + 4])):
                            raise BadMagic("wrong magic bytes: this is not a p2sp stream")
                        break
                    magic, crc, length = _unpack_from(buf, pos)
                    if magic != MAGIC:
                        raise BadMagic("wrong magic bytes: this is not a p2sp stream")
                    if length == 0:
                        raise BadLength("frame length is 0")
                    if length > self.max_frame:
                        raise BadLength(
                            f"frame length {length} is over the limit of {self.max_frame} bytes"
                        )
                    self._need = length
                    self._crc = crc
                    pos += HEADER_SIZE
                if end - pos < self._need:
                    break
                payload = bytes(buf[pos : pos + self._need])
                if _crc32(payload) != self._crc:
                    raise BadChecksum("payload checksum does not match the frame header")
                frames.append(payload)
                pos += self._need
                self._need = 0
        except ProtocolError as exc:
            # Poison the decoder and drop what it held: nothing after a bad
            # frame can be trusted, and the caller closes the connection.
            self._error = (type(exc), exc.message)
            buf.clear()
            raise
        del buf[:pos]
        return frames
