"""Write Claude Code transcript lines in the real format, from a test or as a real second process.

As a library: `assistant_line(...)`, `progress_line(...)`, `limit_line(...)` return one JSON line (bytes, with
the newline). As a script, it appends lines to a transcript the way Claude Code does, optionally splitting a
line across two writes with a pause, so that a reader sees a partial last line first:

    python tests/support/transcript_writer.py FILE --count 3 --session S --start 0 [--split-pause 0.5]
        [--delay 0.01] [--streamed]

`--streamed` writes each response twice (two content blocks sharing message.id and requestId, the second with
the final usage), as Claude Code streams them. Each response i has message id `msg_<session>_<i>`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TS = datetime(2026, 2, 10, 21, 0, 0, tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def assistant_line(
    i: int,
    *,
    session: str = "sess-1",
    ts: datetime | None = None,
    model: str = "claude-sonnet-4-5-20250929",
    input_tokens: int = 10,
    output_tokens: int = 100,
    cache_5m: int = 0,
    cache_1h: int = 1000,
    cache_read: int = 5000,
    sidechain: bool = False,
    message_id: str | None = None,
    request_id: str | None = None,
    speed: str | None = None,
    cwd: str = "/home/me/app",
    extra: dict[str, Any] | None = None,
    text: str = "Done.",
) -> bytes:
    """Return one assistant line (real Claude Code 2.1 shape) for response `i`, newline included."""
    usage: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_5m + cache_1h,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_5m, "ephemeral_1h_input_tokens": cache_1h},
        "service_tier": "standard",
    }
    if speed:
        usage["speed"] = speed
    entry: dict[str, Any] = {
        "parentUuid": None,
        "isSidechain": sidechain,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.39",
        "gitBranch": "main",
        "type": "assistant",
        "requestId": request_id or f"req_{session}_{i}",
        "uuid": f"uuid-{session}-{i}",
        "timestamp": iso(ts or BASE_TS + timedelta(seconds=i)),
        "message": {
            "id": message_id or f"msg_{session}_{i}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        },
    }
    entry.update(extra or {})
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def user_line(i: int, *, session: str = "sess-1", text: str = "hello") -> bytes:
    """Return one user line (no usage), newline included."""
    entry = {
        "type": "user",
        "sessionId": session,
        "timestamp": iso(BASE_TS + timedelta(seconds=i)),
        "message": {"role": "user", "content": text},
        "uuid": f"u-{session}-{i}",
    }
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def progress_line(i: int, *, session: str = "sess-1", model: str = "claude-haiku-4-5-20251001") -> bytes:
    """Return an `agent_progress` line whose nested sub-agent message carries usage."""
    entry = {
        "type": "progress",
        "isSidechain": False,
        "sessionId": session,
        "version": "2.1.39",
        "timestamp": iso(BASE_TS + timedelta(seconds=i, milliseconds=500)),
        "uuid": f"p-{session}-{i}",
        "data": {
            "type": "agent_progress",
            "agentId": "afb92ff",
            "message": {
                "type": "assistant",
                "timestamp": iso(BASE_TS + timedelta(seconds=i)),
                "requestId": f"req_agent_{session}_{i}",
                "uuid": f"d-{session}-{i}",
                "message": {
                    "id": f"msg_agent_{session}_{i}",
                    "model": model,
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 200,
                        "cache_read_input_tokens": 0,
                        "cache_creation_input_tokens": 900,
                    },
                },
            },
        },
    }
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


def limit_line(
    text: str, *, session: str = "sess-1", ts: datetime | None = None, error: bool = True
) -> bytes:
    """Return a synthetic "limit reached" assistant line with `text` (zero usage, `<synthetic>` model)."""
    entry: dict[str, Any] = {
        "type": "assistant",
        "sessionId": session,
        "version": "2.1.39",
        "cwd": "/home/me/app",
        "timestamp": iso(ts or BASE_TS),
        "uuid": f"lim-{session}-{text[:10]}",
        "isApiErrorMessage": True,
        "message": {
            "id": f"msg_lim_{abs(hash(text)) % 10**8}",
            "model": "<synthetic>",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }
    if error:
        entry["error"] = "rate_limit"
        entry["apiErrorStatus"] = 429
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _append(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("file")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--session", default="sess-1")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between lines")
    parser.add_argument("--split-pause", type=float, default=0.0, help="write each line in two halves")
    parser.add_argument("--streamed", action="store_true", help="two lines per response, as streaming writes")
    args = parser.parse_args(argv)
    for i in range(args.start, args.start + args.count):
        lines = [assistant_line(i, session=args.session)]
        if args.streamed:
            lines.insert(0, assistant_line(i, session=args.session, output_tokens=1, text="thinking"))
        for line in lines:
            if args.split_pause > 0:
                half = len(line) // 2
                _append(args.file, line[:half])
                print("half", flush=True)
                time.sleep(args.split_pause)
                _append(args.file, line[half:])
            else:
                _append(args.file, line)
        if args.delay:
            time.sleep(args.delay)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
