"""Generate a synthetic Claude Code transcript corpus shaped like real ones, for the ledger benchmarks.

Shape (after performance-notes.md): about 4 KB per line on average; tool-result `user` lines carry most bytes
but no usage; about 55 % of lines carry usage, 38 % of those are streamed duplicates (several content blocks
of one response sharing message.id and requestId); about a fifth of the files are sub-agent transcripts
(`<session>/subagents/agent-*.jsonl`, isSidechain true); some `agent_progress` lines nest usage.

    python benchmarks/corpus.py DEST --size-mb 200 [--seed 1] [--same-usage-repeats]

DEST becomes a Claude config dir (DEST/projects/...). Prints files, lines, usage lines, unique responses.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MODELS = [
    "claude-opus-4-6",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5-20251101",
]
WORDS = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was",
    "on", "be", "by", "this", "are", "from", "at", "or", "an", "have", "not",
]  # fmt: skip


@dataclass
class Counts:
    files: int = 0
    lines: int = 0
    usage_lines: int = 0
    responses: int = 0
    bytes: int = 0


def _text(rng: random.Random, n: int) -> str:
    words = rng.choices(WORDS, k=max(1, n // 4))
    return " ".join(words)[:n]


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


class SessionWriter:
    def __init__(
        self,
        rng: random.Random,
        counts: Counts,
        session: str,
        cwd: str,
        start: datetime,
        same_usage: bool = False,
    ) -> None:
        self.rng, self.counts, self.session, self.cwd = rng, counts, session, cwd
        self.same_usage = same_usage  # the copies of a response repeat its usage, else it grows to the last
        self.t = start
        self.n = 0

    def _envelope(self, kind: str, sidechain: bool) -> dict[str, Any]:
        self.n += 1
        self.t += timedelta(seconds=self.rng.randint(2, 40), milliseconds=self.rng.randint(0, 999))
        return {
            "parentUuid": f"p{self.n}",
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session,
            "version": "2.1.39",
            "gitBranch": "main",
            "type": kind,
            "uuid": f"{self.session}-{self.n}",
            "timestamp": self.t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.t.microsecond // 1000:03d}Z",
        }

    def response(self, sidechain: bool, model: str) -> list[str]:
        rng = self.rng
        self.counts.responses += 1
        rid = f"{self.session[:8]}{self.counts.responses:09d}"
        blocks = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]  # ~38 % of usage lines are streamed copies
        usage = {
            "input_tokens": rng.randint(1, 400),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": rng.randint(10_000, 180_000),
            "cache_creation": {
                "ephemeral_5m_input_tokens": 0,
                "ephemeral_1h_input_tokens": rng.randint(0, 9000),
            },
            "service_tier": "standard",
        }
        usage["cache_creation_input_tokens"] = usage["cache_creation"]["ephemeral_1h_input_tokens"]  # type: ignore[index]
        final_out = rng.randint(20, 3000)
        lines = []
        for b in range(blocks):
            entry = self._envelope("assistant", sidechain)
            entry["requestId"] = f"req_{rid}"
            kind = "thinking" if b == 0 and blocks > 1 else ("tool_use" if b == blocks - 1 else "text")
            if kind == "tool_use":
                content = [
                    {
                        "type": "tool_use",
                        "id": f"toolu_{rid}",
                        "name": "Bash",
                        "input": {"command": _text(rng, rng.randint(40, 600))},
                    }
                ]
            else:
                content = [{"type": kind, kind: _text(rng, rng.randint(100, 1800))}]
            entry["message"] = {
                "id": f"msg_{rid}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": self._output(b == blocks - 1, final_out)},
            }
            lines.append(_dump(entry))
        self.counts.usage_lines += blocks
        return lines

    def _output(self, last: bool, final: int) -> int:
        if last:
            return final
        partial = self.rng.randint(1, 20)  # drawn either way: both kinds of corpus differ only in this
        return final if self.same_usage else partial

    def tool_result(self, sidechain: bool) -> str:
        entry = self._envelope("user", sidechain)
        size = int(self.rng.lognormvariate(8.3, 1.0))  # median ~4 KB, long tail
        entry["message"] = {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_x",
                    "content": _text(self.rng, min(size, 400_000)),
                }
            ],
        }
        entry["toolUseResult"] = {"stdout": _text(self.rng, min(size // 2, 200_000)), "stderr": ""}
        return _dump(entry)

    def progress(self, model: str) -> str:
        entry = self._envelope("progress", False)
        self.counts.responses += 1
        self.counts.usage_lines += 1
        rid = f"agent{self.session[:8]}{self.counts.responses:09d}"
        entry["data"] = {
            "type": "agent_progress",
            "agentId": "a1",
            "message": {
                "type": "assistant",
                "timestamp": entry["timestamp"],
                "requestId": f"req_{rid}",
                "message": {
                    "id": f"msg_{rid}",
                    "model": model,
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 200,
                        "cache_read_input_tokens": 5000,
                        "cache_creation_input_tokens": 900,
                    },
                },
            },
        }
        return _dump(entry)


def write_file(path: Path, lines: list[str], counts: Counts) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(data)
    counts.files += 1
    counts.lines += len(lines)
    counts.bytes += len(data)


def generate(dest: Path, size_mb: float, seed: int = 1, same_usage: bool = False) -> Counts:
    """Write a corpus of about `size_mb` MB under `dest/projects`; return what was written. `same_usage`: a
    response's streamed copies repeat its usage (as Claude Code 2.1 writes them: 146 of the real corpus's
    149 copies), instead of growing to the last one's (as older versions did)."""
    rng = random.Random(seed)
    counts = Counts()
    target = int(size_mb * 1_000_000)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    projects = [f"-home-me-project{i}" for i in range(12)]
    s = 0
    while counts.bytes < target:
        s += 1
        project = rng.choice(projects)
        session = f"{rng.getrandbits(64):016x}-{s:06d}"
        cwd = "/home/me/" + project.rsplit("-", 1)[-1]
        when = start + timedelta(hours=rng.randint(0, 24 * 300))
        w = SessionWriter(rng, counts, session, cwd, when, same_usage)
        model = rng.choice(MODELS)
        lines: list[str] = []
        for _ in range(rng.randint(15, 60)):
            lines.extend(w.response(False, model))
            lines.append(w.tool_result(False))
            if rng.random() < 0.03:
                lines.append(w.progress("claude-haiku-4-5-20251001"))
        write_file(dest / "projects" / project / f"{session}.jsonl", lines, counts)
        for a in range(rng.choice([0, 0, 0, 1, 2])):
            sub: list[str] = []
            aw = SessionWriter(rng, counts, session, cwd, when, same_usage)
            for _ in range(rng.randint(8, 30)):
                sub.extend(aw.response(True, "claude-haiku-4-5-20251001"))
                sub.append(aw.tool_result(True))
            write_file(
                dest / "projects" / project / session / "subagents" / f"agent-a{a}{s:06x}.jsonl", sub, counts
            )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a synthetic Claude Code transcript corpus.")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--same-usage-repeats", action="store_true", help="streamed copies repeat the usage (Claude Code 2.1)"
    )
    args = parser.parse_args(argv)
    c = generate(args.dest, args.size_mb, args.seed, args.same_usage_repeats)
    print(
        f"{c.files} files, {c.bytes / 1e6:.0f} MB, {c.lines} lines, {c.usage_lines} usage lines, "
        f"{c.responses} unique responses ({1 - c.responses / max(c.usage_lines, 1):.0%} duplicates)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
