"""The line parser follows ccusage 20's rules (§3) and reads limit messages of every era (§4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.parse import LimitEvent, Skip, UsageEvent, limit_kind, parse_line, reset_at_ms
from tests.support.transcript_writer import assistant_line, limit_line, progress_line, user_line

UTC_ZONE = ZoneInfo("UTC")


def parsed(line: bytes) -> UsageEvent:
    result = parse_line(line, UTC_ZONE)
    assert isinstance(result, UsageEvent), result
    return result


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_assistant_line_gives_every_field() -> None:
    e = parsed(assistant_line(3, session="s", cache_5m=7, cache_1h=1000, cache_read=5000, speed="fast"))
    assert (e.message_id, e.request_id, e.session_id, e.model) == (
        "msg_s_3",
        "req_s_3",
        "s",
        "claude-sonnet-4-5-20250929",
    )
    assert (e.input_tokens, e.output_tokens, e.cache_read_tokens) == (10, 100, 5000)
    assert (e.cache_creation_tokens, e.cache_5m_tokens, e.cache_1h_tokens) == (1007, 7, 1000)
    assert e.speed == "fast" and e.source == "assistant" and not e.is_sidechain
    assert e.ts_ms == ms("2026-02-10T21:00:03+00:00")
    assert e.cwd == "/home/me/app" and e.git_branch == "main" and e.version == "2.1.39"
    assert e.dedup_key == "msg_s_3\x1freq_s_3"


def test_lines_without_the_usage_marker_are_not_parsed() -> None:
    assert parse_line(user_line(1), UTC_ZONE) == Skip("no usage")
    spaced = assistant_line(1).replace(b'"usage":{', b'"usage": {')
    assert parse_line(spaced, UTC_ZONE) == Skip("no usage")


@pytest.mark.parametrize(
    "key", ["id", "cwd", "model", "speed", "costUSD", "version", "sessionId", "requestId"]
)
def test_a_null_listed_key_anywhere_skips_the_line(key: str) -> None:
    line = assistant_line(1, extra={"somewhere": {key: None}})
    result = parse_line(line, UTC_ZONE)
    assert isinstance(result, Skip) and f'"{key}":null' in result.reason and not result.bad


def test_missing_cache_fields_default_to_zero_and_no_breakdown_prices_as_5m() -> None:
    line = (
        b'{"timestamp":"2026-01-09T10:00:00.000Z","sessionId":"a","message":{"id":"m","model":"claude-opus-4",'
        b'"usage":{"input_tokens":1,"output_tokens":2,"cache_creation_input_tokens":30}},"requestId":"r"}'
    )
    e = parsed(line)
    assert (e.cache_creation_tokens, e.cache_5m_tokens, e.cache_1h_tokens, e.cache_read_tokens) == (
        30,
        30,
        0,
        0,
    )


def test_breakdown_wins_over_cache_creation_input_tokens() -> None:
    line = assistant_line(1, cache_5m=3, cache_1h=4).replace(
        b'"cache_creation_input_tokens":7', b'"cache_creation_input_tokens":999'
    )
    assert parsed(line).cache_creation_tokens == 7


@pytest.mark.parametrize(
    ("ts", "ok"),
    [
        ("2026-02-10T21:58:20Z", True),
        ("2026-02-10T21:58:20.101Z", True),
        ("2026-02-10T21:58:20+02:00", True),
        ("2026-02-10T21:58:20.101-05:30", True),
        ("2026-02-10 21:58:20Z", False),
        ("2026-02-10T21:58:20.1Z", False),
        ("2026-02-10T21:58Z", False),
        ("yesterday", False),
    ],
)
def test_timestamp_shapes(ts: str, ok: bool) -> None:
    line = assistant_line(1, extra={"timestamp": ts})
    result = parse_line(line, UTC_ZONE)
    assert isinstance(result, UsageEvent) is ok
    if not ok:
        assert isinstance(result, Skip) and result.bad and "timestamp" in result.reason


def test_offset_timestamp_is_converted_to_utc() -> None:
    assert parsed(assistant_line(1, extra={"timestamp": "2026-02-10T23:00:00+02:00"})).ts_ms == ms(
        "2026-02-10T21:00:00+00:00"
    )


@pytest.mark.parametrize("version", ["abc", "2.1", "v2.1.3", ""])
def test_bad_version_is_rejected(version: str) -> None:
    result = parse_line(assistant_line(1, extra={"version": version}), UTC_ZONE)
    assert isinstance(result, Skip) and result.bad


@pytest.mark.parametrize("field", ["sessionId", "requestId"])
def test_empty_ids_are_rejected(field: str) -> None:
    result = parse_line(assistant_line(1, extra={field: ""}), UTC_ZONE)
    assert isinstance(result, Skip) and result.bad


@pytest.mark.parametrize(
    "line",
    [
        b'{"message":{"usage":{"input_tokens":"10","output_tokens":1}},"timestamp":"2026-02-10T21:58:20Z"}',
        b'{"message":{"usage":{"input_tokens":1.5,"output_tokens":1}},"timestamp":"2026-02-10T21:58:20Z"}',
        b'[{"message":{"usage":{"input_tokens":1,"output_tokens":1}}}]',
        b'{"message":{"usage":{"input_tokens":1,"output_tokens":1}',
        b'{"message":{"usage":{"input_tokens":1,"output_tokens":1}},"cwd":"\xff\xfe"}',
        b'{"message":{"usage":{"output_tokens":1}},"timestamp":"2026-02-10T21:58:20Z"}',
    ],
    ids=["string-count", "float-count", "non-object", "truncated-json", "non-utf8", "missing-input"],
)
def test_bad_lines_are_skipped_as_bad(line: bytes) -> None:
    result = parse_line(line, UTC_ZONE)
    assert isinstance(result, Skip) and result.bad


def test_type_is_not_checked_and_unknown_types_with_usage_count() -> None:
    e = parsed(assistant_line(1, extra={"type": "some-future-type"}))
    assert e.output_tokens == 100


def test_progress_usage_is_read_from_the_nested_message() -> None:
    e = parsed(progress_line(4, session="s"))
    assert e.source == "progress" and e.model == "claude-haiku-4-5-20251001"
    assert (e.message_id, e.request_id) == ("msg_agent_s_4", "req_agent_s_4")
    assert (e.input_tokens, e.output_tokens, e.cache_creation_tokens) == (10, 200, 900)
    assert e.ts_ms == ms("2026-02-10T21:00:04+00:00")  # the nested message's own timestamp


def test_costusd_and_sidechain_are_kept() -> None:
    e = parsed(assistant_line(1, sidechain=True, extra={"costUSD": 0.25}))
    assert e.cost_usd == 0.25 and e.is_sidechain


def test_line_without_message_id_has_no_dedup_key() -> None:
    line = b'{"timestamp":"2026-02-10T21:58:20Z","message":{"usage":{"input_tokens":1,"output_tokens":2}}}'
    assert parsed(line).dedup_key is None


# ---- limit messages --------------------------------------------------------------------------------------


def test_old_unix_seconds_limit_message() -> None:
    result = parse_line(limit_line("Claude AI usage limit reached|1751997600", error=False), UTC_ZONE)
    assert isinstance(result, LimitEvent)
    assert result.kind == "session" and result.reset_at_ms == 1_751_997_600_000
    assert result.usage is not None and result.usage.total_tokens == 0 and result.usage.model == "<synthetic>"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("5-hour limit reached ∙ resets 5am", "session"),
        ("Weekly limit reached ∙ resets Oct 9, 5pm", "weekly"),
        ("Opus weekly limit reached ∙ resets Oct 9, 5pm", "opus"),
        ("You've hit your limit · resets 6pm (Asia/Hong_Kong)", "unknown"),
        ("You've hit your session limit · resets 9:50pm (Asia/Saigon)", "session"),
        ("You've hit your weekly limit · resets Jan 24 at 6pm (Asia/Hong_Kong)", "weekly"),
        ("You've hit your Opus limit · resets 9pm (Europe/Paris)", "opus"),
        ("You've hit your Sonnet limit · resets 9pm (Europe/Paris)", "sonnet"),
        ("You've hit your Fable limit · resets 9pm (Europe/Paris)", "model"),
        ("You've hit your monthly spend limit · resets Mar 1, 12am (UTC)", "monthly_spend"),
        ("You're out of usage credits · resets Mar 1, 12am (UTC)", "credits"),
    ],
)
def test_limit_kinds_of_every_era(text: str, kind: str) -> None:
    assert limit_kind(text) == kind
    result = parse_line(limit_line(text), UTC_ZONE)
    assert isinstance(result, LimitEvent) and result.kind == kind and result.text == text


def test_clock_reset_is_the_first_future_time_in_the_quoted_zone() -> None:
    line_ts = ms("2026-02-10T13:00:00+00:00")  # 20:00 in Saigon (UTC+7)
    assert reset_at_ms("resets 9:50pm (Asia/Saigon)", line_ts, UTC) == ms("2026-02-10T14:50:00+00:00")
    # 6am Saigon already passed today: tomorrow
    assert reset_at_ms("resets 6am (Asia/Saigon)", line_ts, UTC) == ms("2026-02-10T23:00:00+00:00")


def test_clock_reset_without_zone_uses_the_local_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    line_ts = ms("2025-08-20T10:00:00+00:00")  # 12:00 in Paris (summer time)
    assert reset_at_ms("5-hour limit reached ∙ resets 5pm", line_ts, paris) == ms("2025-08-20T15:00:00+00:00")


def test_dated_reset_rolls_into_next_year_when_past() -> None:
    line_ts = ms("2025-12-30T10:00:00+00:00")
    got = reset_at_ms("resets Jan 2 at 6pm (Asia/Hong_Kong)", line_ts, UTC)
    assert got == ms("2026-01-02T10:00:00+00:00")
    assert reset_at_ms(
        "Weekly limit reached ∙ resets Oct 9, 5pm", ms("2025-10-07T00:00:00+00:00"), UTC
    ) == ms("2025-10-09T17:00:00+00:00")


def test_api_error_that_is_not_a_limit_is_just_usage() -> None:
    line = limit_line("API Error: 500 internal", error=False)
    assert isinstance(parse_line(line, UTC_ZONE), UsageEvent)


def test_rate_limit_error_with_unknown_text_is_an_unknown_limit() -> None:
    result = parse_line(limit_line("Something new about limits"), UTC_ZONE)
    assert isinstance(result, LimitEvent) and result.kind == "unknown" and result.reset_at_ms is None


def test_writer_lines_are_compact_json() -> None:
    assert json.loads(assistant_line(1))["message"]["usage"]["input_tokens"] == 10


def _fast_and_full_agree(line: bytes) -> bool:
    """The ingest's fast path (usage_fields, then the null rule) either declines a line or gives exactly the
    full parser's event."""
    from daemon.parse import null_key, parse_marked_line, usage_fields

    fields = usage_fields(line)
    if fields is None or null_key(line) is not None:
        return False
    e = parse_marked_line(line, UTC_ZONE)
    assert isinstance(e, UsageEvent), (line[:200], e)
    assert fields == (
        e.ts_ms,
        e.message_id,
        e.request_id,
        e.cwd,
        e.git_branch,
        e.version,
        e.model,
        e.speed,
        int(e.is_sidechain),
        e.input_tokens,
        e.output_tokens,
        e.cache_5m_tokens,
        e.cache_1h_tokens,
        e.cache_read_tokens,
        e.cost_usd,
    )
    return True


def test_the_ingest_fast_path_gives_the_full_parser_answer_or_declines() -> None:
    import json as _json

    def variant(**changes: object) -> bytes:
        entry = _json.loads(assistant_line(5))
        for path, value in changes.items():
            node = entry
            *parents, last = path.split("__")
            for p in parents:
                node = node[p]
            node[last] = value
        return _json.dumps(entry, separators=(",", ":")).encode()

    accepted = [
        assistant_line(1),
        assistant_line(2, sidechain=True, speed="fast", cache_5m=3),
        assistant_line(3, extra={"costUSD": 0.5}),
        variant(timestamp="2026-02-10T21:00:59.999Z"),
        variant(message__usage__cache_creation=None),
    ]
    declined = [
        variant(message__id=""),  # empty ids are bad lines
        variant(requestId=""),
        variant(message__model=""),
        variant(sessionId=""),
        variant(timestamp="2026-02-10T21:00:60.000Z"),  # not a time
        variant(version="x.y"),
        variant(isApiErrorMessage=True),
        variant(message__usage__input_tokens="10"),
        assistant_line(4, extra={"somewhere": {"cwd": None}}),
        _json.dumps({k: v for k, v in _json.loads(assistant_line(6)).items() if k != "timestamp"}).encode(),
        progress_line(1),
        b'{"usage":{bad',
        b'"usage":{}',
        limit_line("Claude AI usage limit reached|1751997600"),
    ]
    declined.append(variant(message__id=None))  # no message id: keyed by its line, by the full parser
    either = [  # other shapes of timestamp: handed to the full parser's rule, the same answer either way
        variant(timestamp="2026-02-10T21:00:03Z"),
        variant(timestamp="2026-02-10T21:00:03.250+02:00"),
        variant(timestamp="2026-02-10T21:00:0\u0663.000Z"),
    ]
    assert all(_fast_and_full_agree(line) for line in accepted)
    assert not any(_fast_and_full_agree(line) for line in declined)
    for line in either:
        _fast_and_full_agree(line)
    # the minute cache answers as the full parser does once warm
    for second in (0, 7, 59):
        assert _fast_and_full_agree(variant(timestamp=f"2026-03-01T10:11:{second:02d}.123Z"))


def test_the_ingest_fast_path_agrees_on_the_real_transcripts(real_corpus: Path) -> None:
    from daemon.parse import USAGE_MARKER

    fast = 0
    for f in sorted(real_corpus.rglob("*.jsonl")):
        for line in f.read_bytes().splitlines():
            if USAGE_MARKER in line:
                fast += _fast_and_full_agree(line)
    assert fast > 50
