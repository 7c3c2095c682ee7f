"""Framing (docs/protocol.md, "Frame"): every rejection rule, and properties over any byte split."""

from __future__ import annotations

import contextlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2sp.common.exceptions import BadChecksum, BadLength, BadMagic, ProtocolError
from p2sp.common.protocol import HEADER_SIZE, MAGIC, FrameDecoder, encode_frame

payloads = st.binary(min_size=1, max_size=2048)


def test_header_layout() -> None:
    frame = encode_frame(b'{"a":1}')
    magic, crc, length = struct.unpack("<4sII", frame[:HEADER_SIZE])
    assert magic == b"\xab\xcd\xef\x88"
    assert crc == zlib.crc32(b'{"a":1}')
    assert length == 7
    assert frame[HEADER_SIZE:] == b'{"a":1}'


def test_wrong_magic() -> None:
    with pytest.raises(BadMagic):
        FrameDecoder().feed(b"\x00" * 12 + b"x")


def test_http_request_is_refused_on_its_first_bytes() -> None:
    with pytest.raises(BadMagic):
        FrameDecoder().feed(b"GET")


def test_bad_checksum() -> None:
    frame = bytearray(encode_frame(b"hello"))
    frame[-1] ^= 0x01
    with pytest.raises(BadChecksum):
        FrameDecoder().feed(bytes(frame))


def test_zero_length() -> None:
    with pytest.raises(BadLength):
        FrameDecoder().feed(struct.pack("<4sII", MAGIC, 0, 0))


def test_oversize_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(max_frame=100)
    with pytest.raises(BadLength):
        decoder.feed(struct.pack("<4sII", MAGIC, 0, 101))
    assert decoder.buffered == 0


def test_exactly_max_frame_is_accepted() -> None:
    decoder = FrameDecoder(max_frame=100)
    assert decoder.feed(encode_frame(b"x" * 100)) == [b"x" * 100]


def test_decoder_is_poisoned_after_an_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(BadMagic):
        decoder.feed(b"garbage!")
    with pytest.raises(BadMagic):
        decoder.feed(encode_frame(b"valid"))


def test_partial_header_waits() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"abc")
    assert decoder.feed(frame[:7]) == []
    assert decoder.buffered == 7
    assert decoder.feed(frame[7:]) == [b"abc"]
    assert decoder.buffered == 0


@given(st.lists(payloads, min_size=1, max_size=20), st.data())
@settings(max_examples=300)
def test_any_split_decodes_to_the_same_frames(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p) for p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    decoder = FrameDecoder()
    out: list[bytes] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        out.extend(decoder.feed(stream[start:cut]))
        start = cut
    assert out == frames
    assert decoder.buffered == 0


@given(st.lists(st.binary(max_size=512), max_size=10))
@settings(max_examples=500)
def test_arbitrary_bytes_raise_only_protocol_errors(chunks: list[bytes]) -> None:
    decoder = FrameDecoder(max_frame=4096)
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            # Never more than one frame's worth is held.
            assert decoder.buffered <= HEADER_SIZE + 4096
    except ProtocolError:
        pass


@given(st.binary(min_size=12, max_size=64))
def test_arbitrary_bytes_after_magic_raise_only_protocol_errors(tail: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        FrameDecoder(max_frame=1024).feed(MAGIC + tail)


@given(st.integers(min_value=1025, max_value=2**32 - 1))
def test_any_oversize_header_is_refused_before_its_payload(length: int) -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(BadLength):
        decoder.feed(struct.pack("<4sII", MAGIC, 0, length))
