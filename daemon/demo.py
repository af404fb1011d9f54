"""`baton demo`: watch baton work on a synthetic session, in under a minute, touching none of your data.

Everything happens in a temporary folder: its own BATON_HOME (ledger, handoffs, logs), its own Claude config
dir, a small custom plan (100,000 tokens per window), and a stand-in for `claude` that records how it was
started. The real pieces run: a `baton run` daemon, transcript lines appended as Claude Code writes them, the
real `baton statusline`, `baton handoff new` and `baton schedule` commands, and desktop notifications when a
notification server is there (the demo prints each one either way).

The story: a session burns through the plan (80/90/95 % alerts), Claude Code's status line reports the limit
with a reset a few seconds away, a handoff is written and its launch scheduled just after the reset, the
window resets, and the daemon starts the stand-in `claude` in the project with the handoff as its prompt.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from daemon.errors import BatonError
from daemon.paths import BatonPaths

TOKEN_LIMIT = 100_000
# Tokens per turn (input + output + cache creation, what counts against a plan): 82 % after turn 6, 93 % after
# turn 8, 97 % after turn 9, so each alert fires on its own turn.
TURNS = (12_000, 15_000, 18_000, 14_000, 12_000, 11_000, 6_000, 5_000, 4_000)
RESET_IN_S = 12  # the reset the status line reports when the limit is hit
LAUNCH_AFTER_RESET_S = 8  # the launch waits a little past the reset, as `scheduler.offset_minutes` does
SESSION_ID = "d3m0d3m0-0000-4000-8000-000000000001"
MODEL = "claude-sonnet-4-5-20250929"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent

Echo = Callable[[str], None]


# --- pure: the synthetic session, the config, the stand-in ---


def iso(ts: datetime) -> str:
    """Return `ts` as Claude Code writes timestamps (UTC, milliseconds, Z)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def assistant_line(ts: datetime, tokens: int, turn: int, cwd: str) -> str:
    """Return one Claude Code `assistant` transcript line using `tokens` (split as a real turn would be)."""
    input_tokens = tokens // 10
    cache_creation = tokens // 2
    output_tokens = tokens - input_tokens - cache_creation
    line = {
        "parentUuid": str(uuid.uuid4()),
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": SESSION_ID,
        "version": "2.1.197",
        "gitBranch": "main",
        "type": "assistant",
        "requestId": f"req_demo{turn:04d}{uuid.uuid4().hex[:16]}",
        "uuid": str(uuid.uuid4()),
        "timestamp": iso(ts),
        "message": {
            "id": f"msg_demo{turn:04d}{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": f"(demo turn {turn})"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": cache_creation,
                "cache_read_input_tokens": tokens * 3,  # re-read context: not counted against the plan
                "cache_creation": {
                    "ephemeral_5m_input_tokens": cache_creation,
                    "ephemeral_1h_input_tokens": 0,
                },
                "service_tier": "standard",
            },
        },
    }
    return json.dumps(line, separators=(",", ":"))


def statusline_input(transcript: Path, cwd: str, percent: float, resets_at: datetime) -> dict[str, Any]:
    """Return the JSON Claude Code sends its status line command, with this 5-hour `rate_limits` figure."""
    return {
        "session_id": SESSION_ID,
        "transcript_path": str(transcript),
        "cwd": cwd,
        "model": {"id": MODEL, "display_name": "Sonnet 4.5"},
        "workspace": {"current_dir": cwd, "project_dir": cwd},
        "version": "2.1.197",
        "rate_limits": {"five_hour": {"used_percentage": percent, "resets_at": int(resets_at.timestamp())}},
    }


def project_folder_name(project: Path) -> str:
    """Return the folder name Claude Code uses for `project` under projects/ (non-alphanumerics as '-')."""
    return "".join(c if c.isalnum() else "-" for c in str(project))


def config_text(stand_in: Path) -> str:
    """Return the demo's config.toml: a small custom plan, launches headless through the stand-in."""
    return "\n".join(
        [
            "# baton demo: a small plan so that a short session reaches the alerts.",
            "[quota]",
            'plan = "custom"',
            f"token_limit = {TOKEN_LIMIT}",
            "[alerts]",
            "thresholds = [80, 90, 95]",
            "[scheduler]",
            "reminder_minutes = 0",
            "[launch]",
            'mode = "headless"',
            f"claude_path = {json.dumps(str(stand_in))}",
            "",
        ]
    )


STAND_IN = """#!{python}
# A stand-in for `claude` (baton demo): records how it was started, then exits.
import json, os, sys
with open({record!r}, "w", encoding="utf-8") as f:
    json.dump({{"argv": sys.argv[1:], "cwd": os.getcwd()}}, f)
print("stand-in claude: started in", os.getcwd())
"""


def stand_in_source(record: Path, python: str = sys.executable) -> str:
    """Return the stand-in `claude` script, which writes its argv and cwd as JSON to `record`."""
    return STAND_IN.format(python=python, record=str(record))


# --- edges ---


@dataclass(frozen=True)
class Workspace:
    """The demo's private folder and what lives in it."""

    root: Path
    baton_home: Path
    claude_dir: Path
    project: Path
    transcript: Path
    stand_in: Path
    record: Path

    @classmethod
    def create(cls, root: Path) -> Workspace:
        """Lay out the folders, the config and the stand-in under `root` (0700) and return them."""
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        project = root / "project"
        claude_dir = root / "claude"
        ws = cls(
            root=root,
            baton_home=root / "baton-home",
            claude_dir=claude_dir,
            project=project,
            transcript=claude_dir / "projects" / project_folder_name(project) / f"{SESSION_ID}.jsonl",
            stand_in=root / "bin" / "claude",
            record=root / "claude-was-started.json",
        )
        for d in (ws.baton_home, project, ws.transcript.parent, ws.stand_in.parent):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        (project / "README.md").write_text("# demo project\n", encoding="utf-8")
        ws.stand_in.write_text(stand_in_source(ws.record), encoding="utf-8")
        ws.stand_in.chmod(0o700)
        (ws.baton_home / "config.toml").write_text(config_text(ws.stand_in), encoding="utf-8")
        return ws

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Return `base` with every BATON_* variable replaced: baton sees only the demo's folders."""
        env = {k: v for k, v in base.items() if not k.startswith("BATON_") and k != "CLAUDE_CONFIG_DIR"}
        env.update(
            BATON_HOME=str(self.baton_home),
            CLAUDE_CONFIG_DIR=str(self.claude_dir),
            PYTHONPATH=os.pathsep.join(filter(None, [str(PACKAGE_ROOT), base.get("PYTHONPATH", "")])),
            PYTHONUNBUFFERED="1",
        )
        return env


class DemoFailed(BatonError):
    """A step of the demo did not happen in time; the message says which, with the daemon's last output."""


class Demo:
    """Runs the demo's steps against a real daemon, printing what happens through `echo`."""

    def __init__(self, ws: Workspace, echo: Echo, env: Mapping[str, str] | None = None) -> None:
        self.ws = ws
        self.echo = echo
        self.env = ws.env(os.environ if env is None else env)
        self.paths = BatonPaths.from_env(self.env)
        self.daemon: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.notifications: list[str] = []
        self.started = time.monotonic()

    # helpers

    def baton(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a baton command in the demo's environment. Raise DemoFailed if it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "daemon", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.ws.root,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise DemoFailed(f"`baton {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:5.1f}s] {text}")

    def snapshot(self) -> dict[str, Any] | None:
        """Return the daemon's latest quota snapshot (None before its first)."""
        from daemon import snapshot

        data = snapshot.read(self.paths)
        if data is None or self.daemon is None or data.get("pid") not in (None, self.daemon.pid):
            return None
        return data

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `check()` holds, printing notifications meanwhile. Raise DemoFailed on timeout."""
        deadline = time.monotonic() + timeout
        while not check():
            self.show_notifications()
            if self.daemon is not None and self.daemon.poll() is not None:
                raise DemoFailed(f"the daemon exited ({self.daemon.returncode}) while waiting for {what}")
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"timed out waiting for {what}", hint=f"daemon output: {self.ws.root}/daemon.out"
                )
            time.sleep(0.1)
        self.show_notifications()

    def show_notifications(self) -> None:
        """Print the notifications the daemon sent since the last call (read from its JSON log)."""
        log = self.paths.log_file
        if not log.is_file():
            return
        with log.open("rb") as handle:
            handle.seek(self._log_offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._log_offset += len(complete)
        for raw in complete.splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            event = entry.get("event")
            if event not in ("notification_sent", "notification_not_delivered"):
                continue
            where = (
                "on your desktop"
                if event == "notification_sent"
                else "logged: no desktop notification server"
            )
            title = str(entry.get("title", ""))
            self.notifications.append(title)
            self.say(f"  notification ({where}): {title}")

    # the steps

    def start_daemon(self) -> None:
        self.say(f"demo folder: {self.ws.root} (BATON_HOME and CLAUDE_CONFIG_DIR point here)")
        self.say(f"plan: custom, {TOKEN_LIMIT:,} tokens per 5-hour window; `claude` is a stand-in")
        out = (self.ws.root / "daemon.out").open("wb")
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run"], env=self.env, cwd=self.ws.root, stdout=out, stderr=out
        )
        out.close()
        self.wait_for("the daemon to start", lambda: self.snapshot() is not None, timeout=30)
        self.say(f"baton run started (pid {self.daemon.pid}) and follows {self.ws.claude_dir}/projects")

    def replay(self, pause: float) -> None:
        self.say(f"replaying a session of {len(TURNS)} turns into {self.ws.transcript.name} ...")
        total = 0
        for turn, tokens in enumerate(TURNS, start=1):
            total += tokens
            with self.ws.transcript.open("a", encoding="utf-8") as handle:
                handle.write(assistant_line(datetime.now(UTC), tokens, turn, str(self.ws.project)) + "\n")
            self.wait_for(
                f"turn {turn} to be counted",
                lambda total=total: (self.snapshot() or {}).get("tokens_used", 0) >= total,  # type: ignore[misc]
            )
            snap = self.snapshot() or {}
            self.say(
                f"turn {turn}: +{tokens:,} tokens -> "
                f"{snap.get('percent', 0):.0f}% used ({snap.get('level', '?')})"
            )
            time.sleep(pause)

    def handoff(self) -> str:
        done = self.baton(
            "handoff", "new", "--no-interactive", "--project", str(self.ws.project),
            "--title", "Finish the CSV importer",
            "--accomplished", "Parser handles plain rows; 12 tests pass",
            "--objective", "Handle quoted fields and embedded newlines ~20k",
            "--objective", "Add the --strict flag ~10k",
            "--start", "manual",
        )  # fmt: skip
        path = Path(done.stdout.strip().splitlines()[-1])
        self.say(f"wrote a handoff for the next session: {path.name}")
        return path.stem

    def hit_limit(self) -> datetime:
        reset = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=RESET_IN_S)
        data = statusline_input(self.ws.transcript, str(self.ws.project), 100.0, reset)
        line = self.baton("statusline", stdin=json.dumps(data)).stdout.strip()
        self.say(f"Claude Code's status line reports the limit, reset at {reset.astimezone():%H:%M:%S}:")
        self.say(f"  baton statusline -> {line}")
        self.wait_for("the daemon to see the limit", lambda: bool((self.snapshot() or {}).get("limited")))
        return reset

    def schedule(self, handoff_id: str) -> None:
        done = self.baton(
            "schedule", "--handoff", handoff_id, "--at-reset", "--offset", f"{LAUNCH_AFTER_RESET_S}s"
        )
        self.say(f"scheduled the launch {LAUNCH_AFTER_RESET_S}s after the reset:")
        for line in done.stdout.strip().splitlines():
            self.say(f"  {line}")

    def reset(self, reset: datetime) -> None:
        self.say("waiting for the reset ...")
        self.wait_for("the reset", lambda: datetime.now(UTC) >= reset, timeout=RESET_IN_S + 5)
        fresh = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=5)
        data = statusline_input(self.ws.transcript, str(self.ws.project), 0.0, fresh)
        self.baton("statusline", stdin=json.dumps(data))
        self.say("the window reset: the status line reports 0% of a fresh window")

    def launched(self) -> dict[str, Any]:
        self.wait_for("the launch", self.ws.record.is_file, timeout=LAUNCH_AFTER_RESET_S + 20)
        record: dict[str, Any] = json.loads(self.ws.record.read_text(encoding="utf-8"))
        argv = [str(a) for a in record.get("argv", [])]
        prompt = next((a for a in argv if "\n" in a or len(a) > 60), "")
        self.say(f"the daemon started `claude` in {record.get('cwd')}")
        self.say(f"  arguments: {' '.join(a if a != prompt else '<prompt>' for a in argv)}")
        for line in prompt.splitlines()[:6]:
            self.say(f"  | {line[:96]}{' ...' if len(line) > 96 else ''}")
        self.wait_for("the launch notification", lambda: any("resumed" in n for n in self.notifications), 10)
        return record

    def stop(self) -> None:
        if self.daemon is None or self.daemon.poll() is not None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            code = self.daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            code = self.daemon.wait()
        self.show_notifications()
        self.say(f"stopped the daemon (exit {code})")

    def run(self, pause: float = 0.5) -> dict[str, Any]:
        """Run every step; return the stand-in's record. Raise DemoFailed if a step does not happen."""
        try:
            self.start_daemon()
            self.replay(pause)
            reset = self.hit_limit()
            handoff_id = self.handoff()
            self.schedule(handoff_id)
            self.reset(reset)
            return self.launched()
        finally:
            self.stop()


def run_demo(
    echo: Echo, *, keep: bool = False, root: Path | None = None, pause: float = 0.5
) -> dict[str, Any]:
    """Run the demo in a new temporary folder (removed afterwards unless `keep`); return the launch record."""
    base = root or Path(tempfile.mkdtemp(prefix="baton-demo-"))
    ws = Workspace.create(base)
    try:
        return Demo(ws, echo).run(pause)
    finally:
        if keep:
            echo(f"kept the demo folder: {ws.root}")
        else:
            shutil.rmtree(ws.root, ignore_errors=True)
