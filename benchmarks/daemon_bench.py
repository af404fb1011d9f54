"""Benchmarks of the live daemon (figures, not tests): run `python benchmarks/daemon_bench.py`.

1. latency: a line appended to a transcript -> the desktop notification it causes, through a real
   `baton run`, a real D-Bus session bus and a fake notification server (p50, p95; target p95 < 1 s).
2. idle CPU: the daemon's user+system CPU time over `--idle-seconds` (60) with nothing happening (< 0.5 s).
3. RSS: the daemon's resident memory after catching up on a generated history (`--history-mb`, default 1000,
   made by benchmarks/corpus.py) and following it (< 150 MB); peak RSS (VmHWM) shown too.
4. statusline: wall time of `baton statusline` with Claude Code's stdin (median, p95; < 100 ms), side by side
   with `ccusage statusline` when ccusage is on PATH.

PYTHONDONTWRITEBYTECODE=1 (as on this machine) means every Python start compiles its imports: the statusline
figure includes that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.desktop import start_bus, start_server, stop_pid  # noqa: E402
from tests.support.processes import DaemonProcess, assistant_line, launch  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * q))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def environment(work: Path, claude: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        "BATON_HOME": str(work / "home"),
        "CLAUDE_CONFIG_DIR": str(claude),
        "BATON_QUOTA__PLAN": "custom",
        "BATON_QUOTA__TOKEN_LIMIT": "100000",
        **extra,
    }
    (work / "home").mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.update(env)
    return env


def bench_latency_and_idle(work: Path, samples: int, idle_seconds: float) -> None:
    claude = work / "claude"
    (claude / "projects").mkdir(parents=True)
    address, bus_pid = start_bus()
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    server = start_server(address, work / "received.jsonl")
    thresholds = json.dumps(list(range(1, samples + 1)))
    environment(work, claude, {"BATON_ALERTS__THRESHOLDS": thresholds, "BATON_ALERTS__RESET_NOTICE": "false"})
    daemon = launch(work / "home")
    transcript = claude / "projects" / "-bench" / "s.jsonl"
    transcript.parent.mkdir(parents=True)
    latencies = []
    try:
        with transcript.open("a") as f:
            for i in range(samples):
                line = assistant_line(datetime.now(UTC), input_tokens=0, output_tokens=1000)  # +1 % each
                start = time.perf_counter()
                f.write(line + "\n")
                f.flush()
                while len(server.received()) <= i:
                    if time.perf_counter() - start > 10:
                        raise SystemExit(f"no notification for sample {i}:\n{daemon.output()[-2000:]}")
                    time.sleep(0.001)
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
        ms = [x * 1000 for x in latencies]
        print(
            f"latency line -> notification ({samples} samples): p50 {statistics.median(ms):.1f} ms, "
            f"p95 {pct(ms, 0.95):.1f} ms, max {max(ms):.1f} ms   (target p95 < 1000 ms)"
        )
        time.sleep(2)
        before = cpu_seconds(daemon.pid)
        time.sleep(idle_seconds)
        used = cpu_seconds(daemon.pid) - before
        print(f"idle CPU over {idle_seconds:.0f} s: {used:.3f} s   (target < 0.5 s)")
    finally:
        daemon.stop()
        server.process.terminate()
        stop_pid(bus_pid)


def bench_rss(work: Path, history_mb: int) -> None:
    claude = work / "history"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "corpus.py"), str(claude), "--size-mb", str(history_mb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"generated {history_mb} MB history in {time.perf_counter() - started:.0f} s")
    environment(work / "rss", claude, {"BATON_NOTIFY__BACKEND": "log"})
    started = time.perf_counter()
    daemon: DaemonProcess = launch(work / "rss" / "home")
    daemon.wait_until(lambda: daemon.snapshot() is not None, timeout=1800, what="catch-up")
    caught = time.perf_counter() - started
    time.sleep(3)
    rss, peak = rss_mb(daemon.pid)
    print(
        f"RSS after catching up on {history_mb} MB ({caught:.0f} s) and following it: {rss:.0f} MB "
        f"(peak {peak:.0f} MB)   (target < 150 MB)"
    )
    daemon.stop()


def bench_statusline(work: Path, runs: int) -> None:
    home = work / "sl" / "home"
    home.mkdir(parents=True, mode=0o700)
    env = {**os.environ, "BATON_HOME": str(home)}
    payload = json.dumps(
        {
            "session_id": "s",
            "cwd": str(work),
            "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
            "transcript_path": str(work / "none.jsonl"),
            "version": "2.1.197",
            "workspace": {"current_dir": str(work), "project_dir": str(work)},
            "cost": {"total_cost_usd": 1.0, "total_duration_ms": 1000},
            "rate_limits": {
                "five_hour": {"used_percentage": 55.0, "resets_at": int(time.time()) + 3600},
                "seven_day": {"used_percentage": 20.0, "resets_at": int(time.time()) + 86400},
            },
        }
    )
    peers = {"baton statusline": [sys.executable, "-m", "daemon", "statusline"]}
    ccusage = shutil.which("ccusage") or shutil.which(
        "ccusage", path=str(ROOT / ".ci/node/node_modules/.bin")
    )
    if ccusage:
        peers["ccusage statusline --offline"] = [ccusage, "statusline", "--offline"]
    for name, argv in peers.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                argv, input=payload, text=True, capture_output=True, env=env, cwd=ROOT, check=False
            )
            times.append((time.perf_counter() - start) * 1000)
        print(
            f"{name}: median {statistics.median(times):.0f} ms, p95 {pct(times, 0.95):.0f} ms ({runs} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--history-mb", type=int, default=1000)
    parser.add_argument("--statusline-runs", type=int, default=20)
    parser.add_argument("--skip", action="append", default=[], choices=["latency", "rss", "statusline"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="baton-bench-") as tmp:
        work = Path(tmp)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')}"
        )
        if "statusline" not in args.skip:
            bench_statusline(work, args.statusline_runs)
        if "latency" not in args.skip:
            bench_latency_and_idle(work / "lat", args.samples, args.idle_seconds)
        if "rss" not in args.skip:
            bench_rss(work, args.history_mb)


if __name__ == "__main__":
    main()
