"""Unit tests of the instance wire protocol and of output collection (no processes)."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.runtime.output import OutputCollector, parse_line
from squall.runtime.protocol import (
    FROM_INSTANCE,
    FROM_NODE,
    LENGTHS,
    MAX_HEAD_BYTES,
    MAX_PAYLOAD_BYTES,
    Bye,
    FrameTooLarge,
    Init,
    InitFailed,
    Invoke,
    Message,
    ProtocolError,
    Ready,
    Result,
    Shutdown,
    check_lengths,
    decode_lengths,
    encode_frame,
    from_instance,
    from_node,
    split_frame,
)
from squall.runtime.zygote_protocol import (
    FROM_ZYGOTE,
    TO_ZYGOTE,
    Exited,
    Spawn,
    Spawned,
    SpawnFailed,
    report_from_zygote,
    request_from_node,
)
from squall.types import LogLevel

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)
NONCE = b"0123456789abcdef"


@given(header=st.dictionaries(st.text(max_size=10), json_values, max_size=5), payload=st.binary(max_size=512),
       marker=st.binary(max_size=16))
def test_frames_round_trip(header: dict, payload: bytes, marker: bytes) -> None:
    data = encode_frame(header, payload, marker)
    assert data.startswith(marker)
    body = data[len(marker):]
    head_len, payload_len = decode_lengths(body)
    assert LENGTHS.size + head_len + payload_len == len(body)
    assert split_frame(data, marker) == (body[LENGTHS.size:LENGTHS.size + head_len], payload)


def test_frame_lengths_over_the_limits_are_refused() -> None:
    check_lengths(MAX_HEAD_BYTES, MAX_PAYLOAD_BYTES)
    for head_len, payload_len in ((MAX_HEAD_BYTES + 1, 0), (10, MAX_PAYLOAD_BYTES + 1), (10, 2**32 - 1)):
        with pytest.raises(FrameTooLarge):
            check_lengths(head_len, payload_len)


# -- one round trip per message: build -> bytes -> parse -> equal ------------------------
def round_trip(message: Message, marker: bytes = b"") -> Message:
    """Through bytes twice: as the message's own class reads a whole frame, and as the
    receiving side decodes a frame's header and payload."""
    data = message.to_bytes(marker)
    again = type(message).from_bytes(data, marker)
    assert again == message
    head, payload = split_frame(data, marker)
    if type(message).TAG in FROM_NODE:
        return from_node(head, payload)
    if type(message).TAG in FROM_INSTANCE:
        return from_instance(head, payload)
    return report_from_zygote(data) if type(message).TAG in FROM_ZYGOTE else request_from_node(data)


INIT = Init(
    nonce=NONCE.decode(), function="orders", version="3", handler="app.handler", code_dir="/srv/code",
    memory=256, environ={"PATH": "/bin", "TZ": ":UTC"}, sys_path=("/srv/code", "/srv/deps"),
    log_group="/aws/lambda/orders", log_stream="2026/01/01/[3]ab", sandbox={"memory_mb": 256, "uid": 100000},
    initializer="app.init", shutdown="app.close", deadline_ms=1_767_225_600_000,
    arn="arn:aws:lambda:us-east-1:000000000000:function:orders")


def test_init_round_trips() -> None:
    assert round_trip(INIT) == INIT
    bare = Init(**{**{f.name: getattr(INIT, f.name) for f in fields(Init)},
                   "sandbox": {}, "initializer": None, "shutdown": None, "sys_path": ()})
    assert round_trip(bare) == bare


def test_ready_round_trips() -> None:
    assert round_trip(Ready(init_ms=12.5), NONCE) == Ready(12.5)


def test_init_failed_round_trips() -> None:
    error = b'{"errorMessage":"boom","errorType":"Runtime.ImportModuleError","requestId":"","stackTrace":[]}'
    assert round_trip(InitFailed(init_ms=3.0, error=error), NONCE) == InitFailed(3.0, error)


def test_invoke_round_trips() -> None:
    message = Invoke(request_id="r-1", deadline_ms=1_767_225_600_000, arn="arn:aws:lambda:x:0:function:f:prod",
                     version="3", trace_id="Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6;Parent=53995c3f42cd8ad8;Sampled=0",
                     client_context='{"custom": {"a": 1}}', event=b'{"n": 1}')
    assert round_trip(message) == message
    assert round_trip(Invoke("r-2", 1, "arn")) == Invoke("r-2", 1, "arn", "$LATEST", "", None, b"")


def test_result_round_trips() -> None:
    message = Result(ok=True, duration_ms=0.25, max_rss_kb=30_000, exiting=False, payload=b'{"ok": true}')
    assert round_trip(message, NONCE) == message
    exiting = Result(ok=False, duration_ms=1.0, max_rss_kb=1, exiting=True, payload=b'{"errorType": "x"}')
    assert round_trip(exiting, NONCE) == exiting


def test_shutdown_round_trips() -> None:
    assert round_trip(Shutdown(deadline_ms=1_767_225_602_000)) == Shutdown(1_767_225_602_000)


def test_bye_round_trips() -> None:
    assert round_trip(Bye(), NONCE) == Bye()


def test_spawn_round_trips() -> None:
    assert round_trip(Spawn(request=7)) == Spawn(7)


def test_spawned_round_trips() -> None:
    assert round_trip(Spawned(request=7, pid=4242)) == Spawned(7, 4242)


def test_spawn_failed_round_trips() -> None:
    message = SpawnFailed(request=7, error="fork failed: [Errno 11] Resource temporarily unavailable")
    assert round_trip(message) == message


def test_exited_round_trips() -> None:
    assert round_trip(Exited(pid=4242, status=9, oom=True)) == Exited(4242, 9, True)


def test_every_message_has_a_round_trip_test() -> None:
    tags = {*FROM_NODE, *FROM_INSTANCE, *TO_ZYGOTE, *FROM_ZYGOTE}
    tested = {name.removeprefix("test_").removesuffix("_round_trips") for name in globals()
              if name.endswith("_round_trips")}
    assert tags == tested
    assert len(tags) == len(FROM_NODE) + len(FROM_INSTANCE) + len(TO_ZYGOTE) + len(FROM_ZYGOTE)


def test_a_header_holds_the_tag_and_every_field_but_the_payload() -> None:
    assert Invoke("r", 5, "arn", event=b"{}").header() == {
        "t": "invoke", "request_id": "r", "deadline_ms": 5, "arn": "arn", "version": "$LATEST", "trace_id": "",
        "client_context": None}
    assert Result(True, 1.0, 2, payload=b"[]").header() == {
        "t": "result", "ok": True, "duration_ms": 1.0, "max_rss_kb": 2, "exiting": False}
    assert Bye().header() == {"t": "bye"}


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Ready(1.0).init_ms = 2.0  # type: ignore[misc]


# -- malformed frames: the error names the message and the field ------------------------
RESULT_HEAD = {"t": "result", "ok": True, "duration_ms": 1.5, "max_rss_kb": 10, "exiting": False}


def frame_head(header: object) -> bytes:
    return encode_frame(header, b"")[LENGTHS.size:]  # type: ignore[arg-type]


@pytest.mark.parametrize(("header", "message", "field", "words"), [
    ({k: v for k, v in RESULT_HEAD.items() if k != "ok"}, "result", "ok", "is missing"),
    ({**RESULT_HEAD, "ok": "yes"}, "result", "ok", "must be true or false, not a string"),
    ({**RESULT_HEAD, "max_rss_kb": 1.5}, "result", "max_rss_kb", "must be an integer, not a number"),
    ({**RESULT_HEAD, "max_rss_kb": True}, "result", "max_rss_kb", "must be an integer, not a boolean"),
    ({**RESULT_HEAD, "duration_ms": None}, "result", "duration_ms", "must be a number, not null"),
    ({**RESULT_HEAD, "id": "r-1"}, "result", "id", "is not a field of this message"),
    ({"t": "ready"}, "ready", "init_ms", "is missing"),
    ({"t": "bye", "deadline_ms": 1}, "bye", "deadline_ms", "is not a field of this message"),
    ({"t": "invoke", "request_id": "r", "deadline_ms": 1, "arn": "a"}, None, "t",
     "'invoke', not a message an instance sends (ready, init_failed, result, bye)"),
    ({"t": "hello"}, None, "t", "'hello', not a message an instance sends"),
    ({"ok": True}, None, "t", "missing or not a string"),
    ({"t": 3}, None, "t", "missing or not a string"),
])
def test_a_malformed_frame_from_an_instance_names_message_and_field(
        header: dict, message: str | None, field: str, words: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        from_instance(frame_head(header), b"")
    assert (caught.value.message, caught.value.field) == (message, field)
    assert words in str(caught.value)
    assert repr(field) in str(caught.value) and (message is None or f"{message} frame" in str(caught.value))


def test_a_number_may_come_as_an_integer_and_a_tuple_as_a_list() -> None:
    assert from_instance(frame_head({**RESULT_HEAD, "duration_ms": 2}), b"") == Result(True, 2.0, 10, False, b"")
    assert Init.from_header({**INIT.header(), "sys_path": ["/a"]}).sys_path == ("/a",)


def test_a_header_without_its_tag_is_refused() -> None:
    with pytest.raises(ProtocolError, match="invalid bye frame: field 't' is missing"):
        Bye.from_header({})


def test_a_frame_whose_header_is_not_a_json_object_is_refused() -> None:
    for head, words in ((b'{"t": "result"', "not JSON"), (b"[1, 2]", "header is a list"), (b"", "not JSON")):
        with pytest.raises(ProtocolError, match=words):
            from_instance(head, b"")


def test_a_payload_on_a_message_without_one_is_refused() -> None:
    with pytest.raises(ProtocolError, match="invalid ready frame: has no payload, got 2 bytes"):
        from_instance(frame_head({"t": "ready", "init_ms": 1.0}), b"{}")


def test_the_instance_refuses_a_malformed_frame_from_the_node() -> None:
    header = {**INIT.header(), "sys_path": "/srv/code"}
    with pytest.raises(ProtocolError, match="invalid init frame: field 'sys_path' must be a list of strings"):
        from_node(frame_head(header), b"")
    header = {**INIT.header(), "environ": {"PATH": 1}}
    with pytest.raises(ProtocolError, match="field 'environ' must be an object of strings"):
        from_node(frame_head(header), b"")
    header = {k: v for k, v in INIT.header().items() if k != "arn"}
    with pytest.raises(ProtocolError, match="invalid init frame: field 'arn' is missing"):
        from_node(frame_head(header), b"")
    with pytest.raises(ProtocolError, match="'result', not a message the node sends"):
        from_node(frame_head(RESULT_HEAD), b"")


def test_from_bytes_refuses_another_message_and_broken_frames() -> None:
    with pytest.raises(ProtocolError, match="invalid ready frame: field 't' is 'bye'"):
        Ready.from_bytes(Bye().to_bytes())
    data = Result(True, 1.0, 1, payload=b"{}").to_bytes(NONCE)
    with pytest.raises(ProtocolError, match="does not start with its marker"):
        Result.from_bytes(data, b"x" * len(NONCE))
    with pytest.raises(ProtocolError, match="announces"):
        Result.from_bytes(data[:-1], NONCE)
    with pytest.raises(ProtocolError, match="too short"):
        Result.from_bytes(NONCE + b"\0\0", NONCE)


def test_a_malformed_zygote_packet_is_refused() -> None:
    with pytest.raises(ProtocolError, match="invalid spawned frame: field 'pid' is missing"):
        report_from_zygote(encode_frame({"t": "spawned", "request": 1}))
    with pytest.raises(ProtocolError, match="'spawn', not a message a zygote sends"):
        report_from_zygote(Spawn(1).to_bytes())
    with pytest.raises(ProtocolError, match="invalid spawn frame: field 'request' must be an integer"):
        request_from_node(encode_frame({"t": "spawn", "request": "1"}))
    with pytest.raises(ProtocolError, match="announces"):
        request_from_node(Spawn(1).to_bytes() + b"x")


def test_lambda_formatted_lines_keep_their_level() -> None:
    line = parse_line("[WARNING]\t2026-01-01T00:00:00.000Z\trid\tfirst\rsecond", 1.0)
    assert line.level is LogLevel.WARN
    assert line.message.endswith("first\nsecond")
    assert parse_line("[ERROR]\tx", 1.0).level is LogLevel.ERROR
    assert parse_line("plain print", 1.0).level is LogLevel.INFO


def test_collector_splits_lines_across_chunks() -> None:
    collector = OutputCollector()
    for chunk in (b"hel", b"lo\nwor", b"ld\n", b"tail"):
        collector.feed(chunk)
    assert [line.message for line in collector.finish()] == ["hello", "world", "tail"]
    assert collector.finish() == []


@given(st.lists(st.binary(max_size=300), max_size=30))
def test_collector_caps_output_and_says_so(chunks: list[bytes]) -> None:
    collector = OutputCollector(limit=1000)
    for chunk in chunks:
        collector.feed(chunk)
    lines = collector.finish()
    total = sum(len(c) for c in chunks)
    stored = sum(len(line.message.encode("utf-8", "surrogateescape")) for line in lines
                 if not line.message.startswith("[squall]"))
    assert stored <= 1000 * 3  # replacement characters can widen undecodable bytes
    truncated = any(line.message.startswith("[squall] log output truncated") for line in lines)
    assert truncated == (total > 1000)
