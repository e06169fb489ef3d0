"""The pure part of the bench's WebSocket client: handshake, frames, permessage-deflate. No sockets.

Frames are checked both against hand-written bytes (RFC 6455 / 7692 examples) and against the
`websockets` library's own frame codec, so that both sides of the wire agree with an independent
implementation.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate as LibDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from cascade_cli.bench.ws_client import (
    CLOSE_INVALID_DATA,
    CLOSE_TOO_BIG,
    DEFLATE_OFFER,
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameParser,
    HandshakeError,
    PerMessageDeflate,
    ProtocolError,
    Response,
    accept_value,
    check_response,
    close_payload,
    encode_frame,
    handshake_request,
    mask_payload,
    parse_close,
    parse_response,
    split_url,
)

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def lib_parse(data: bytes, *, mask: bool, extensions: list[object] | None = None) -> Frame:
    """One frame parsed by the websockets library."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=mask, extensions=extensions)  # type: ignore[arg-type]
    try:
        next(parser)
    except StopIteration as exc:
        return exc.value
    raise AssertionError("incomplete frame")


def server_frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False)


# ---- handshake -----------------------------------------------------------------------------------


def test_accept_value_matches_the_rfc_example() -> None:
    assert accept_value(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_request_has_the_required_headers() -> None:
    text = handshake_request("127.0.0.1:8000", "/ws/a?token=x", b"a2V5a2V5a2V5a2V5a2V5aw==",
                             headers=[("User-Agent", "t")], extensions=DEFLATE_OFFER).decode()
    lines = text.split("\r\n")
    assert lines[0] == "GET /ws/a?token=x HTTP/1.1"
    assert "Host: 127.0.0.1:8000" in lines
    assert "Upgrade: websocket" in lines and "Connection: Upgrade" in lines
    assert "Sec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==" in lines
    assert "Sec-WebSocket-Version: 13" in lines
    assert f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}" in lines
    assert "User-Agent: t" in lines
    assert text.endswith("\r\n\r\n")


def _response(key: bytes, extra: str = "", status: str = "101 Switching Protocols") -> bytes:
    return (f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_value(key).decode()}\r\n{extra}\r\n").encode()


def test_parse_response_waits_for_the_whole_head_and_keeps_what_follows() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    data = _response(key) + b"\x81\x02hi"
    assert parse_response(data[:20]) is None
    parsed = parse_response(data)
    assert parsed is not None
    response, rest = parsed
    assert response.status == 101 and response.headers["upgrade"] == "websocket"
    assert rest == b"\x81\x02hi"
    assert check_response(response, key, offered_deflate=False) is None


def test_parse_response_joins_repeated_headers() -> None:
    parsed = parse_response(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
    assert parsed is not None and parsed[0].headers["x-a"] == "1, 2"


@pytest.mark.parametrize("data", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n",
                                  b"HTTP/1.1 101 OK\r\nno colon here\r\n\r\n"])
def test_parse_response_rejects_what_is_not_http(data: bytes) -> None:
    with pytest.raises(HandshakeError):
        parse_response(data)


def test_parse_response_bounds_the_head() -> None:
    with pytest.raises(HandshakeError):
        parse_response(b"HTTP/1.1 101 OK\r\nX: " + b"a" * 70000)


def test_check_response_refuses_a_wrong_accept_and_other_statuses() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    parsed = parse_response(_response(b"b3RoZXJrZXlvdGhlcmtleQ=="))
    assert parsed is not None
    with pytest.raises(HandshakeError, match="Accept"):
        check_response(parsed[0], key, offered_deflate=False)
    forbidden = parse_response(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert forbidden is not None
    with pytest.raises(HandshakeError) as info:
        check_response(forbidden[0], key, offered_deflate=False)
    assert info.value.status == 403
    no_upgrade = Response(101, "", {"connection": "upgrade",
                                    "sec-websocket-accept": accept_value(key).decode()})
    with pytest.raises(HandshakeError, match="Upgrade"):
        check_response(no_upgrade, key, offered_deflate=False)


def test_check_response_refuses_an_extension_that_was_not_offered() -> None:
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    parsed = parse_response(_response(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))
    assert parsed is not None
    with pytest.raises(HandshakeError, match="not offered"):
        check_response(parsed[0], key, offered_deflate=False)
    deflate = check_response(parsed[0], key, offered_deflate=True)
    assert isinstance(deflate, PerMessageDeflate)


def test_split_url() -> None:
    plain = split_url("ws://127.0.0.1:8000/ws/a?token=x")
    assert (plain.host, plain.port, plain.tls, plain.host_header, plain.resource) == (
        "127.0.0.1", 8000, False, "127.0.0.1:8000", "/ws/a?token=x")
    secure = split_url("wss://example.test")
    assert (secure.port, secure.tls, secure.host_header, secure.resource) == (443, True, "example.test", "/")
    assert split_url("ws://[::1]:9/").host_header == "[::1]:9"
    with pytest.raises(ValueError):
        split_url("http://127.0.0.1/")


# ---- frames --------------------------------------------------------------------------------------


def test_mask_payload_is_its_own_inverse_and_matches_a_bytewise_xor() -> None:
    data = os.urandom(1001)
    mask = b"\x01\x02\x03\x04"
    masked = mask_payload(data, mask)
    assert masked == bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    assert mask_payload(masked, mask) == data
    assert mask_payload(b"", mask) == b""


def test_encode_frame_matches_the_rfc_example() -> None:
    # RFC 6455 5.7: a single-frame masked text message "Hello"
    masked = encode_frame(OP_TEXT, b"Hello", mask=b"\x37\xfa\x21\x3d")
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")
    assert encode_frame(OP_TEXT, b"Hello", masked=False) == bytes.fromhex("810548656c6c6f")


@pytest.mark.parametrize("size", SIZES)
def test_client_frames_parse_in_the_websockets_library(size: int) -> None:
    payload = os.urandom(size)
    frame = lib_parse(encode_frame(OP_BINARY, payload), mask=True)
    assert frame.opcode == Opcode.BINARY and frame.fin and frame.data == payload
    ours = FrameParser(masked=True).feed(encode_frame(OP_BINARY, payload))
    assert ours == [(OP_BINARY, payload)]


@pytest.mark.parametrize("size", SIZES)
def test_server_frames_of_every_length_encoding_parse(size: int) -> None:
    payload = os.urandom(size)
    data = server_frame(Opcode.BINARY, payload)
    assert FrameParser().feed(data) == [(OP_BINARY, payload)]
    # the same bytes in random pieces
    parser, out, pos = FrameParser(), [], 0
    rng = random.Random(size)
    while pos < len(data):
        step = rng.randint(1, 5000)
        out += parser.feed(data[pos:pos + step])
        pos += step
    assert out == [(OP_BINARY, payload)]


def test_byte_by_byte_and_many_frames_in_one_read() -> None:
    data = b"".join(server_frame(Opcode.TEXT, f"message {i}".encode()) for i in range(50))
    parser = FrameParser()
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i:i + 1])
    assert out == [(OP_TEXT, f"message {i}".encode()) for i in range(50)]
    assert FrameParser().feed(data) == out


def test_fragmented_message_with_a_ping_in_between() -> None:
    data = (server_frame(Opcode.TEXT, b"Hel", fin=False) + server_frame(Opcode.PING, b"p")
            + server_frame(Opcode.CONT, b"lo ", fin=False) + server_frame(Opcode.CONT, b"world"))
    assert FrameParser().feed(data) == [(OP_PING, b"p"), (OP_TEXT, b"Hello world")]


def test_a_large_fragmented_binary_message() -> None:
    parts = [os.urandom(70000), os.urandom(300), os.urandom(65536)]
    data = (server_frame(Opcode.BINARY, parts[0], fin=False) + server_frame(Opcode.CONT, parts[1], fin=False)
            + server_frame(Opcode.CONT, parts[2]))
    assert FrameParser().feed(data) == [(OP_BINARY, b"".join(parts))]


def test_control_frames_pass_through() -> None:
    data = server_frame(Opcode.PONG, b"x") + server_frame(Opcode.CLOSE, close_payload(1001, "bye"))
    assert FrameParser().feed(data) == [(OP_PONG, b"x"), (OP_CLOSE, b"\x03\xe9bye")]


@pytest.mark.parametrize("data, match", [
    (bytes.fromhex("8185") + b"\x00" * 4 + b"hello", "masked frame from the server"),
    (bytes([0xA1, 0x00]), "RSV2"),
    (bytes([0x83, 0x00]), "reserved data opcode"),
    (bytes([0x8B, 0x00]), "reserved control opcode"),
    (bytes([0x09, 0x00]), "fragmented or compressed control"),
    (bytes([0x89, 126, 0, 126]) + b"x" * 126, "longer than 125"),
    (bytes([0x80, 0x01]) + b"x", "continuation frame without"),
    (bytes([0x01, 0x01]) + b"a" + bytes([0x81, 0x01]) + b"b", "before the fragmented one ended"),
    (bytes([0xC1, 0x01]) + b"x", "RSV1 set without permessage-deflate"),
    (bytes([0x82, 127]) + (1 << 63).to_bytes(8, "big"), "most significant bit"),
])
def test_protocol_errors(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        FrameParser().feed(data)


def test_unmasked_frames_are_refused_where_masks_are_required() -> None:
    with pytest.raises(ProtocolError, match="unmasked client frame"):
        FrameParser(masked=True).feed(encode_frame(OP_TEXT, b"x", masked=False))


def test_size_limits_close_with_1009() -> None:
    with pytest.raises(ProtocolError) as info:
        FrameParser(max_size=100).feed(server_frame(Opcode.BINARY, b"x" * 101)[:4])  # the header is enough
    assert info.value.code == CLOSE_TOO_BIG
    parser = FrameParser(max_size=100)
    parser.feed(server_frame(Opcode.TEXT, b"x" * 60, fin=False))
    with pytest.raises(ProtocolError) as info:
        parser.feed(server_frame(Opcode.CONT, b"x" * 60))
    assert info.value.code == CLOSE_TOO_BIG


def test_parse_close() -> None:
    assert parse_close(b"") == (1005, "")
    assert parse_close(close_payload(1000, "bye")) == (1000, "bye")
    assert parse_close(close_payload(4000, "unknown channel 'nope'")) == (4000, "unknown channel 'nope'")
    for bad in (b"\x03", (1005).to_bytes(2, "big"), (999).to_bytes(2, "big"), (5000).to_bytes(2, "big")):
        with pytest.raises(ProtocolError):
            parse_close(bad)
    with pytest.raises(ProtocolError) as info:
        parse_close(b"\x03\xe8\xff")
    assert info.value.code == CLOSE_INVALID_DATA
    assert len(close_payload(1000, "é" * 100)) <= 125


# ---- permessage-deflate --------------------------------------------------------------------------


def test_deflate_parameters_from_the_servers_answer() -> None:
    d = PerMessageDeflate.from_header("permessage-deflate; server_max_window_bits=12; "
                                      "client_max_window_bits=12")
    assert (d.server_bits, d.client_bits, d.server_no_context_takeover) == (12, 12, False)
    d = PerMessageDeflate.from_header('permessage-deflate;server_no_context_takeover; '
                                      'client_max_window_bits="10"')
    assert d.server_no_context_takeover and d.client_bits == 10 and d.server_bits == 15
    for bad in ("x-webkit-deflate-frame", "permessage-deflate, permessage-deflate", "permessage-deflate; foo",
                "permessage-deflate; server_max_window_bits=16",
                "permessage-deflate; client_max_window_bits=8",
                "permessage-deflate; server_no_context_takeover=1",
                "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"):
        with pytest.raises(HandshakeError):
            PerMessageDeflate.from_header(bad)


def test_deflate_rfc_example() -> None:
    # RFC 7692 7.2.3.1: "Hello" compressed in one frame
    compressed = bytes.fromhex("f248cdc9c90700")
    deflate = PerMessageDeflate()
    parser = FrameParser(deflate=deflate)
    assert parser.feed(bytes([0xC1, len(compressed)]) + compressed) == [(OP_TEXT, b"Hello")]
    # the same message again, sharing the sliding window (RFC 7692 7.2.3.2)
    again = bytes.fromhex("f200110000")
    assert parser.feed(bytes([0xC1, len(again)]) + again) == [(OP_TEXT, b"Hello")]


def test_deflate_agrees_with_the_websockets_library_both_ways() -> None:
    server = LibDeflate(remote_no_context_takeover=False, local_no_context_takeover=False,
                        remote_max_window_bits=12, local_max_window_bits=12)
    ours = PerMessageDeflate(server_bits=12, client_bits=12)
    parser = FrameParser(deflate=ours)
    messages = [b'{"type":"event","n":%d,"data":"%s"}' % (i, b"abc" * i) for i in range(40)]
    for message in messages:  # server -> client, context taken over from message to message
        data = Frame(Opcode.TEXT, message).serialize(mask=False, extensions=[server])
        assert data[0] & 0x40  # RSV1: compressed
        assert parser.feed(data) == [(OP_TEXT, message)]
    for message in messages:  # client -> server
        data = encode_frame(OP_TEXT, ours.compress(message), rsv1=True)
        assert lib_parse(data, mask=True, extensions=[server]).data == message


def test_deflate_without_context_takeover_and_fragmented() -> None:
    deflate = PerMessageDeflate(server_no_context_takeover=True)
    parser = FrameParser(deflate=deflate)
    for text in (b"first message " * 20, b"first message " * 20):
        raw = zlib.compressobj(wbits=-15)
        body = raw.compress(text) + raw.flush(zlib.Z_SYNC_FLUSH)
        assert body.endswith(b"\x00\x00\xff\xff")
        body = body[:-4]
        half = len(body) // 2
        data = bytes([0x41, half]) + body[:half] + bytes([0x80, len(body) - half]) + body[half:]
        assert parser.feed(data) == [(OP_TEXT, text)]


def test_deflate_bombs_and_garbage_are_refused() -> None:
    raw = zlib.compressobj(wbits=-15)
    body = (raw.compress(b"\x00" * 200000) + raw.flush(zlib.Z_SYNC_FLUSH))[:-4]
    with pytest.raises(ProtocolError) as info:
        FrameParser(deflate=PerMessageDeflate(), max_size=1000).feed(encode_frame(OP_BINARY, body, rsv1=True,
                                                                                   masked=False))
    assert info.value.code == CLOSE_TOO_BIG
    with pytest.raises(ProtocolError) as info:
        FrameParser(deflate=PerMessageDeflate()).feed(bytes([0xC1, 4]) + b"\xff\xff\xff\xff")
    assert info.value.code == CLOSE_INVALID_DATA
    with pytest.raises(ProtocolError, match="continuation"):
        FrameParser(deflate=PerMessageDeflate()).feed(bytes([0x01, 1]) + b"a" + bytes([0xC0, 1]) + b"b")
