"""Body parsing and record validation against docs/protocol.md (pure functions)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from sitebeacon.collect.records import (
    FORM_TYPE,
    MAX_BATCH,
    BodyError,
    Meta,
    check_record,
    is_bot,
    media_type,
    parse_body,
    ping_row,
)
from sitebeacon.protocol import DROPPED, MARKS_ALLOWANCE, MAX_DATA, RETRIED

META = Meta("2024-05-01T12:00:00.123Z", "text/plain;charset=UTF-8", "no-cors", False)


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"v": 1, "id": "r1", "type": "pageview", "url": "https://a.example/"}
    base.update(fields)
    return {name: value for name, value in base.items() if value is not ...}


def test_minimal_record_becomes_a_row_with_request_facts() -> None:
    row = check_record(record(), META)
    assert row.id == "r1"
    assert row.type == "pageview"
    assert row.url == "https://a.example/"
    assert row.received_at == META.received_at
    assert row.content_type == META.content_type
    assert row.fetch_mode == "no-cors"
    assert (row.referrer, row.target, row.transport, row.ts, row.data) == (None,) * 5
    assert row.seq == 0
    assert row.bot is False


def test_every_optional_field_is_kept() -> None:
    row = check_record(
        record(
            type="leave",
            ref="https://b/",
            ts=1_700_000_000_000,
            transport="fetchlater",
            seq=3,
            target="https://c/",
            data={"visible_ms": 1234},
            extra="ignored",
        ),
        META,
    )
    assert row.referrer == "https://b/"
    assert row.ts == 1_700_000_000_000
    assert row.transport == "fetchlater"
    assert row.seq == 3
    assert row.target == "https://c/"
    assert json.loads(row.data or "") == {"visible_ms": 1234}


def test_null_optional_fields_count_as_absent() -> None:
    row = check_record(record(ref=None, ts=None, seq=None, transport=None, data=None), META)
    assert (row.referrer, row.ts, row.seq, row.transport, row.data) == (None, None, 0, None, None)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"v": ...}, "v missing"),
        ({"v": 2}, "v is not 1"),
        ({"v": True}, "v is not 1"),
        ({"v": 1.0}, "v is not 1"),
        ({"v": "1"}, "v is not 1"),
        ({"id": ...}, "id missing"),
        ({"id": ""}, "id missing"),
        ({"id": "x" * 65}, "id missing"),
        ({"id": "a b"}, "id missing"),
        ({"id": "abc\n"}, "id missing"),
        ({"id": 5}, "id missing"),
        ({"type": "PageView"}, "type missing"),
        ({"type": "1x"}, "type missing"),
        ({"type": "a" * 33}, "type missing"),
        ({"type": ...}, "type missing"),
        ({"type": ["leave"]}, "type missing"),
        ({"type": {"leave": 1}}, "type missing"),
        ({"url": ...}, "url missing"),
        ({"url": 5}, "url is not a string"),
        ({"url": "u" * 2049}, "url over 2048"),
        ({"url": "https://a/\x00"}, "url holds a NUL"),
        ({"url": "https://a/\ud800"}, "lone surrogate"),
        ({"ref": ["x"]}, "ref is not a string"),
        ({"target": "t" * 2049}, "target over 2048"),
        ({"transport": "carrier-pigeon"}, "transport unknown"),
        ({"transport": ["beacon"]}, "transport unknown"),
        ({"seq": -1}, "seq out of range"),
        ({"seq": 1.5}, "seq is not an integer"),
        ({"seq": False}, "seq is not an integer"),
        ({"ts": "1700000000000"}, "ts is not an integer"),
        ({"ts": 2**63}, "ts out of range"),
        ({"data": [1]}, "data is not an object"),
        ({"data": "x"}, "data is not an object"),
        ({"data": {"k": "x" * 16_400}}, "data over 16384"),
    ],
)
def test_invalid_records_are_refused_with_a_reason(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(BodyError) as caught:
        check_record(record(**fields), META)
    assert reason in caught.value.reason
    assert caught.value.status == 400


def test_limits_are_inclusive() -> None:
    row = check_record(record(id="x" * 64, type="a" * 32, url="u" * 2048, seq=2**63 - 1), META)
    assert len(row.id) == 64
    assert len(row.url) == 2048


def test_data_at_the_limit_stays_accepted_with_the_queue_marks() -> None:
    # The client accepts a custom event's data up to MAX_DATA, then its queue adds the marks:
    # the receiver must not refuse that copy (it would be lost), nor more than the marks allow.
    full = {"k": "x" * (MAX_DATA - len('{"k":""}'))}
    assert len(json.dumps(full, separators=(",", ":"))) == MAX_DATA
    marked = {**full, RETRIED: 1, DROPPED: 20}
    assert json.loads(check_record(record(data=marked), META).data or "") == marked
    with pytest.raises(BodyError, match="data over"):
        check_record(record(data={**full, "x": 1}), META)
    with pytest.raises(BodyError, match="data over"):
        check_record(record(data={**full, RETRIED: "y" * MARKS_ALLOWANCE}), META)


def test_data_limit_counts_utf8_bytes_not_escapes() -> None:
    # 3000 euro signs are 9000 bytes of UTF-8 but 18000 characters once \u-escaped.
    row = check_record(record(data={"k": "€" * 3000}), META)
    assert json.loads(row.data or "") == {"k": "€" * 3000}


def test_data_keeps_nul_and_lone_surrogates_as_escapes() -> None:
    row = check_record(record(data={"k": "a\x00b\ud800"}), META)
    assert row.data is not None and row.data.isascii()
    assert json.loads(row.data) == {"k": "a\x00b\ud800"}


def test_non_ascii_url_is_kept_exactly() -> None:
    assert check_record(record(url="https://a/ünïcode/😀"), META).url == "https://a/ünïcode/😀"


def test_json_body_one_record() -> None:
    parsed = parse_body("text/plain", json.dumps(record()).encode(), META)
    assert [row.id for row in parsed.rows] == ["r1"]
    assert parsed.rejected == []
    assert parsed.batch is False


def test_json_body_batch_keeps_good_records_and_lists_bad_ones() -> None:
    body = json.dumps([record(id="a"), record(id="b", v=2), "junk", record(id="c")]).encode()
    parsed = parse_body("application/json", body, META)
    assert [row.id for row in parsed.rows] == ["a", "c"]
    assert [index for index, _ in parsed.rejected] == [1, 2]
    answer = json.loads(parsed.rejection_json())
    assert answer == {
        "stored": 2,
        "rejected": [
            {"index": 1, "reason": "v is not 1"},
            {"index": 2, "reason": "record is not a JSON object"},
        ],
    }


def test_single_bad_record_answer_is_its_reason() -> None:
    parsed = parse_body("text/plain", json.dumps(record(v=7)).encode(), META)
    assert parsed.rows == []
    assert parsed.rejection_json() == b"v is not 1"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b"[]", "empty batch"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"v": NaN}', "malformed JSON"),
        (b'{"v": Infinity}', "malformed JSON"),
        (b'{"v": 1e400}', "malformed JSON"),
        (b"[" * 100_000, "nested too deeply"),
        (b"1" * 5000, "malformed JSON"),
        (json.dumps([record(id=f"i{n}") for n in range(MAX_BATCH + 1)]).encode(), "at most 100"),
    ],
)
def test_malformed_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_body("text/plain", body, META)
    assert reason in caught.value.reason


def test_lone_surrogate_escape_refuses_only_its_record_of_a_batch() -> None:
    # The fast JSON decoder refuses such a body outright; the fallback keeps per-record answers.
    good = json.dumps(record(id="good"))
    body = f'[{{"v": 1, "id": "bad", "type": "pageview", "url": "https://a/\\ud800"}}, {good}]'
    parsed = parse_body("text/plain", body.encode(), META)
    assert [row.id for row in parsed.rows] == ["good"]
    assert parsed.rejected == [(0, "url holds a NUL or a lone surrogate")]


@pytest.mark.parametrize("number", ["18446744073709551616", "-9223372036854775809"])
def test_integers_beyond_64_bits_are_out_of_range(number: str) -> None:
    body = json.dumps(record()).replace("}", f', "ts": {number}}}').encode()
    parsed = parse_body("text/plain", body, META)
    assert parsed.rows == []
    assert parsed.rejection_json() == b"ts out of range"


def test_data_is_stored_as_compact_json() -> None:
    row = check_record(record(data={"visible_ms": 1200, "note": "é €"}), META)
    assert row.data == '{"visible_ms":1200,"note":"é €"}'


def test_a_full_batch_is_accepted() -> None:
    body = json.dumps([record(id=f"i{n}") for n in range(MAX_BATCH)]).encode()
    assert len(parse_body("text/plain", body, META).rows) == MAX_BATCH


def test_form_body_converts_numbers_and_data() -> None:
    body = urlencode(
        {
            "v": "1",
            "id": "f1",
            "type": "leave",
            "url": "https://a/é",
            "ref": "",
            "ts": "17",
            "seq": "2",
            "transport": "beacon",
            "data": '{"visible_ms": 900}',
        }
    ).encode()
    parsed = parse_body(FORM_TYPE, body, META)
    (row,) = parsed.rows
    assert (row.id, row.type, row.url, row.ts, row.seq, row.transport) == (
        "f1",
        "leave",
        "https://a/é",
        17,
        2,
        "beacon",
    )
    assert row.referrer is None
    assert json.loads(row.data or "") == {"visible_ms": 900}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"v": "one"}, "v is not a decimal integer"),
        ({"v": ""}, "v is not a decimal integer"),
        ({"ts": "1.5"}, "ts is not a decimal integer"),
        ({"data": "{"}, "malformed JSON"),
        ({"data": "[1]"}, "data is not an object"),
    ],
)
def test_bad_form_records(fields: dict[str, str], reason: str) -> None:
    body = urlencode({"v": "1", "id": "f1", "type": "pageview", "url": "https://a/", **fields})
    try:
        parsed = parse_body(FORM_TYPE, body.encode(), META)
    except BodyError as error:
        refused = error.reason
    else:
        assert parsed.rows == []
        refused = parsed.rejection_json().decode()
    assert reason in refused


def test_form_rejects_repeated_fields_and_bad_encoding() -> None:
    with pytest.raises(BodyError, match="repeated"):
        parse_body(FORM_TYPE, b"v=1&v=1&id=a&type=pageview&url=u", META)
    with pytest.raises(BodyError, match="malformed form"):
        parse_body(FORM_TYPE, b"v=1&id=a&type=pageview&url=%ff", META)
    with pytest.raises(BodyError, match="malformed form"):
        parse_body(FORM_TYPE, "url=é".encode(), META)


def test_ping_becomes_an_outbound_record_with_a_fresh_id() -> None:
    first = ping_row("https://a/page", "https://b/", META)
    second = ping_row("https://a/page", "https://b/", META)
    assert (first.type, first.transport, first.url, first.target) == (
        "outbound",
        "ping",
        "https://a/page",
        "https://b/",
    )
    assert first.id != second.id
    assert (
        check_record({"v": 1, "id": first.id, "type": "outbound", "url": first.url}, META).id
        == first.id
    )  # the server-made id is itself a valid protocol id


@pytest.mark.parametrize(
    ("page", "stored"),
    [
        ("https://a/app/?email=a%40b.c#access_token=xyz", "https://a/app/"),
        ("https://a/p?utm_source=nl&token=s&ref=x%20y", "https://a/p?utm_source=nl&ref=x%20y"),
        ("https://a/p?utm_medium", "https://a/p?utm_medium"),
        ("https://a/p?utm_sourcex=1&=2&", "https://a/p"),
        ("https://a/p#s=1?t=2", "https://a/p"),
        ("https://a/p", "https://a/p"),
        ("https://a/?sitebeacon-verify=r1-2&x=1", "https://a/?sitebeacon-verify=r1-2"),
    ],
)
def test_ping_from_loses_the_fragment_and_the_query_not_kept(page: str, stored: str) -> None:
    # The browser makes Ping-From from the page's full address; the receiver cleans it as the
    # client module cleans its own URLs, with the default keep_query.
    assert ping_row(page, "https://b/", META).url == stored
    # Ping-To likewise (a share link made from the page's address carries its secrets).
    target = ping_row(page, "https://b/?u=a%40b.c&utm_source=x&token=t#frag", META).target
    assert target == "https://b/?utm_source=x"


@pytest.mark.parametrize(
    ("ping_from", "ping_to", "reason"),
    [
        (None, "https://b/", "Ping-From"),
        ("https://a/", None, "Ping-To"),
        ("https://a/", "x" * 2049, "Ping-To over"),
    ],
)
def test_ping_needs_both_headers(ping_from: str | None, ping_to: str | None, reason: str) -> None:
    with pytest.raises(BodyError, match=reason):
        ping_row(ping_from, ping_to, META)


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36",
            False,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            False,
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/126.0.0.0 Safari/537.36",
            True,
        ),
        ("Mozilla/5.0 (compatible; Yahoo! Slurp)", True),
        ("curl/8.0.1", True),
        ("Wget/1.21", True),
        ("python-requests/2.31", True),
        ("Baiduspider", True),
        ("", True),
        (None, True),
    ],
)
def test_bot_flag(agent: str | None, bot: bool) -> None:
    assert is_bot(agent) is bot
    assert is_bot(agent) is bot  # the cached answer is the same


def test_media_type() -> None:
    assert media_type("text/plain;charset=UTF-8") == "text/plain"
    assert media_type(" Application/JSON ; x=y") == "application/json"
    assert media_type(None) == ""
