"""``FrameDecoder`` (docs/protocol.md, "Frame") under any bytes and any chunking.

Properties:

- whatever bytes arrive, in whatever pieces, ``feed`` returns payloads or
  raises one of the documented ``ProtocolError`` subclasses, nothing else;
- it never holds a whole frame's worth of bytes between calls (a complete
  frame is always handed out), and after an error it holds nothing and
  raises the same error for every later ``feed``;
- valid frames come out exactly as sent whatever the chunking; garbage after
  them only ever costs what follows, never changes a payload;
- a corrupted valid frame (one bit flipped, a wrong checksum or length,
  truncation) is never accepted as a different payload.
"""

from __future__ import annotations

import itertools
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2sp.common.exceptions import BadChecksum, BadLength, BadMagic, ProtocolError
from p2sp.common.protocol import HEADER_SIZE, MAGIC, FrameDecoder, encode_frame

#: What ``feed`` may raise (docs/protocol.md, "Framing errors (connection closed)").
DECODER_ERRORS = (BadMagic, BadChecksum, BadLength)

max_frames = st.integers(min_value=1, max_value=4096)
payloads = st.binary(min_size=1, max_size=600)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (empty pieces included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def feed_all(
    decoder: FrameDecoder, pieces: list[bytes]
) -> tuple[list[bytes], ProtocolError | None]:
    """Feed every piece; check the buffer bound after each; stop at the first error."""
    out: list[bytes] = []
    for piece in pieces:
        try:
            out += decoder.feed(piece)
        except ProtocolError as exc:
            assert isinstance(exc, DECODER_ERRORS), exc
            assert decoder.buffered == 0
            return out, exc
        # A complete frame is never kept: a header is consumed once whole,
        # then less than its payload is held.
        assert decoder.buffered < max(HEADER_SIZE, decoder.max_frame)
    return out, None


def held(partial: int) -> int:
    """What the decoder holds of a frame of which ``partial`` bytes arrived:
    the header is consumed (checked and remembered) once its 12 bytes are in."""
    return partial - HEADER_SIZE if partial >= HEADER_SIZE else partial


@settings(max_examples=300, deadline=None)
@given(st.data(), st.binary(max_size=2000), max_frames)
def test_arbitrary_bytes_only_raise_protocol_errors(
    data: st.DataObject, blob: bytes, max_frame: int
) -> None:
    decoder = FrameDecoder(max_frame)
    out, error = feed_all(decoder, data.draw(chunked(blob)))
    for payload in out:
        assert 0 < len(payload) <= max_frame
    if error is not None:
        # Poisoned: the stream cannot be resynchronised.
        for more in (b"", MAGIC, encode_frame(b"{}")):
            with pytest.raises(type(error)) as again:
                decoder.feed(more)
            assert again.value.message == error.message  # a fresh exception: no traceback kept
        assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(payloads, min_size=1, max_size=6))
def test_valid_frames_round_trip_in_any_chunking(data: st.DataObject, items: list[bytes]) -> None:
    stream = b"".join(encode_frame(p) for p in items)
    decoder = FrameDecoder(max(len(p) for p in items))
    out, error = feed_all(decoder, data.draw(chunked(stream)))
    assert error is None
    assert out == items
    assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(payloads, min_size=1, max_size=4), st.binary(min_size=1, max_size=64))
def test_garbage_after_valid_frames_never_alters_them(
    data: st.DataObject, items: list[bytes], garbage: bytes
) -> None:
    frames = b"".join(encode_frame(p) for p in items)
    # Garbage in the same read as the frames: what comes out is a prefix of
    # what was sent, unchanged (the connection is closed on the error anyway).
    out, _ = feed_all(FrameDecoder(1024), data.draw(chunked(frames + garbage)))
    assert out == items[: len(out)]
    # Garbage in a later read: every frame before it has come out whole.
    decoder = FrameDecoder(1024)
    out, error = feed_all(decoder, [*data.draw(chunked(frames)), garbage])
    assert out == items
    if error is None:
        # Only a header that may still turn out valid is waited for.
        assert len(garbage) < HEADER_SIZE or garbage[:4] == MAGIC
        assert decoder.buffered == held(len(garbage))


@settings(max_examples=400, deadline=None)
@given(payloads, st.data())
def test_one_flipped_bit_is_never_accepted(payload: bytes, data: st.DataObject) -> None:
    frame = bytearray(encode_frame(payload))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1))
    frame[bit // 8] ^= 1 << (bit % 8)
    decoder = FrameDecoder(2048)
    out, error = feed_all(decoder, data.draw(chunked(bytes(frame))))
    # CRC-32 catches every single-bit error in the payload; a flip in the
    # header is a wrong magic, a wrong checksum or a length that is refused,
    # waits for bytes that never come, or cuts a payload whose CRC differs.
    assert out == []
    if error is None:
        assert decoder.buffered > 0  # still waiting: a longer length was announced
        assert bit // 8 >= 8  # only the length field can cause that


@settings(max_examples=200, deadline=None)
@given(payloads, st.integers(min_value=0, max_value=2**32 - 1), st.data())
def test_wrong_length_or_checksum_is_never_accepted(
    payload: bytes, value: int, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(["crc", "length"]))
    crc, length = zlib.crc32(payload), len(payload)
    if field == "crc":
        crc = value if value != crc else (value + 1) % 2**32
    else:
        length = value if value != length else length + 1
    frame = struct.pack("<4sII", MAGIC, crc, length) + payload
    max_frame = data.draw(st.integers(1, 4096))
    decoder = FrameDecoder(max_frame)
    out, error = feed_all(decoder, data.draw(chunked(frame)))
    assert out == []
    if length == 0 or length > max_frame:
        assert isinstance(error, BadLength)
    elif length > len(payload):
        assert error is None and decoder.buffered == held(len(frame))  # waits for the rest
    else:
        assert isinstance(error, BadChecksum)


@settings(max_examples=200, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=3), st.data())
def test_truncated_stream_waits_and_never_invents(items: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p) for p in items)
    cut = data.draw(st.integers(0, len(stream) - 1))
    decoder = FrameDecoder(1024)
    out, error = feed_all(decoder, data.draw(chunked(stream[:cut])))
    assert error is None
    assert out == items[: len(out)] and len(out) < len(items)
    # What it holds is the beginning of the next frame, nothing more.
    assert decoder.buffered == held(cut - sum(HEADER_SIZE + len(p) for p in out))


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=2**32 - 1), st.integers(min_value=1, max_value=4096))
def test_oversize_is_refused_from_the_header_alone(length: int, max_frame: int) -> None:
    decoder = FrameDecoder(max_frame)
    header = struct.pack("<4sII", MAGIC, 0, length)
    if length > max_frame:
        with pytest.raises(BadLength):
            decoder.feed(header)
        assert decoder.buffered == 0
    else:
        assert decoder.feed(header) == []
        assert decoder.buffered == held(HEADER_SIZE) == 0
