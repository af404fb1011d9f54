"""Ledger benchmark, side by side with ccusage in the same run (medians of whole-process runs).

    python benchmarks/ledger_bench.py --size-mb 200 [--runs 3] [--corpus DIR] [--ccusage PATH]
    python benchmarks/ledger_bench.py --size-mb 1000 --cold-only --runs 10 [--baton-root DIR] [--as-installed]

`--cold-only`: only cold ingest against ccusage's full scan, taking turns for `--runs` rounds (medians and
bests, CPU, peak RSS, the load average before each round). `--baton-root DIR` runs the baton found in DIR (an
older checkout, e.g. `git worktree add /tmp/before <commit>`) in another column, in the same rounds;
`--as-installed` runs them with their bytecode cached. Besides the medians it prints the median of the
round-by-round ratios: baton and ccusage run back to back, so a slow spell of a shared machine hits both.

Measures: cold ingest (`baton ingest` into an empty ledger: seconds, MB/s, peak RSS, CPU; also with the
bytecode cached, as an installed baton runs), `ccusage daily --json --offline` over the same corpus (seconds,
peak RSS, CPU), warm `baton report daily --json` with no new data, and
the time to ingest one appended line into the large ledger inside a running process (the daemon's path), and
the interpreter's own start-up (`python -c pass`), which every command pays.
PYTHONDONTWRITEBYTECODE=1 is honoured as set: with it, nothing is cached between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


CPU: dict[str, list[float]] = {}  # user + system seconds of each timed command (and its children), by name


def timed(
    argv: list[str], env: dict[str, str], name: str = "", cwd: Path | None = None
) -> tuple[float, float]:
    """Run argv; return (wall seconds, peak RSS in MB of the process and the children it waited for).

    Its CPU time (user + system, children included: a load-independent check) is kept in CPU[name]."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed with {proc.returncode}")
    CPU.setdefault(name, []).append(usage.ru_utime + usage.ru_stime)
    return wall, usage.ru_maxrss / 1024


def corpus_dir(size_mb: float, given: Path | None) -> Path:
    if given is not None:
        return given
    dest = Path(tempfile.gettempdir()) / f"baton-bench-corpus-{int(size_mb)}"
    if not (dest / ".complete").exists():
        shutil.rmtree(dest, ignore_errors=True)
        from benchmarks.corpus import generate

        c = generate(dest, size_mb)
        print(
            f"generated {c.files} files, {c.bytes / 1e6:.0f} MB, {c.usage_lines} usage lines", file=sys.stderr
        )
        (dest / ".complete").touch()
    return dest


def corpus_bytes(root: Path) -> int:
    """Return the corpus' size, having read it all once: the page cache then holds it for the first round
    as for the others (this machine's kernel pages out what is left unread for a minute)."""
    total = 0
    for p in (root / "projects").rglob("*.jsonl"):
        with open(p, "rb") as f:
            while chunk := f.read(1 << 24):
                total += len(chunk)
    return total


def one_line_ms(home: Path, corpus: Path, samples: int) -> list[float]:
    """Append one line to a transcript and time Ingestor.ingest_file in this process, `samples` times."""
    os.environ["BATON_HOME"], os.environ["CLAUDE_CONFIG_DIR"] = str(home), str(corpus)
    from daemon.config import load_settings
    from daemon.ingest import Ingestor
    from daemon.paths import BatonPaths
    from tests.support.transcript_writer import assistant_line

    paths = BatonPaths.from_env()
    ingestor = Ingestor(paths, load_settings(paths))
    target = corpus / "projects" / "bench-live" / "live.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch()
    times = []
    for i in range(samples):
        with open(target, "ab") as f:
            f.write(assistant_line(10_000 + i, session="bench-live"))
        start = time.perf_counter()
        summary = ingestor.ingest_file(target)
        times.append((time.perf_counter() - start) * 1000)
        assert summary.new_events == 1
    ingestor.close()
    shutil.rmtree(target.parent)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument(
        "--ccusage", default=shutil.which("ccusage") or str(ROOT / ".ci/node/node_modules/.bin/ccusage")
    )
    parser.add_argument("--cold-only", action="store_true", help="only cold ingest against ccusage")
    parser.add_argument("--baton-root", type=Path, help="also run the baton of this checkout (cold-only)")
    parser.add_argument(
        "--as-installed", action="store_true", help="cold-only: with the bytecode cached, as installed"
    )
    args = parser.parse_args(argv)

    if args.cold_only:
        return cold_only(args)
    corpus = corpus_dir(args.size_mb, args.corpus)
    mb = corpus_bytes(corpus) / 1e6
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(corpus)}
    baton = [sys.executable, "-m", "daemon"]
    work = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    try:
        # baton and ccusage take turns, so that both see the same load on a shared machine
        n = max(args.runs, 5)
        cold, cold_rss, warm, warm_rss, startup, cc, cc_rss, cached = [], [], [], [], [], [], [], []
        cold_cached = []
        # as installed: bytecode cached (in a private prefix, so the checkout is left alone)
        cached_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached_env |= {"PYTHONPYCACHEPREFIX": str(work / "pycache"), "BATON_HOME": str(work / "home0")}
        for r in range(n):
            if r < args.runs:
                wall, rss = timed([*baton, "ingest"], {**env, "BATON_HOME": str(work / f"home{r}")}, "cold")
                cold.append(wall)
                cold_rss.append(rss)
                if r == 0:  # writes the bytecode cache of the modules a first ingest imports
                    timed([*baton, "ingest"], {**cached_env, "BATON_HOME": str(work / "warmup")})
                cached_home = {**cached_env, "BATON_HOME": str(work / f"cached{r}")}
                cold_cached.append(timed([*baton, "ingest"], cached_home, "cold_cached")[0])
            warm_env = {**env, "BATON_HOME": str(work / "home0")}
            wall, rss = timed([*baton, "report", "daily", "--json"], warm_env)
            warm.append(wall)
            warm_rss.append(rss)
            if r == 0:
                timed([*baton, "report", "daily", "--json"], cached_env)  # writes the bytecode cache
            cached.append(timed([*baton, "report", "daily", "--json"], cached_env)[0])
            startup.append(timed([sys.executable, "-c", "pass"], env)[0])
            wall, rss = timed([args.ccusage, "daily", "--json", "--offline"], env, "ccusage")
            cc.append(wall)
            cc_rss.append(rss)
        home = work / "home0"
        line = one_line_ms(home, corpus, 30)
        with __import__("sqlite3").connect(home / "baton.db") as conn:
            events = conn.execute("SELECT count(*) FROM usage_events").fetchone()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    print(
        f"corpus: {mb:.0f} MB, {events} deduplicated events; load average {os.getloadavg()[0]:.1f}; "
        f"cpus {os.cpu_count()}; medians of {args.runs} (cold) / {max(args.runs, 5)} (warm, ccusage) runs"
    )
    in_venv = sys.prefix != sys.base_prefix
    venv = "a virtualenv, as the README installs baton" if in_venv else "not a virtualenv"
    print(f"baton runs as {sys.executable} ({venv})")
    print(f"{'measure':<44}{'baton':>12}{'ccusage 20':>14}{'ratio':>9}")
    rows = [
        ("cold ingest / full scan (s)", med(cold), med(cc)),
        ("  the same with bytecode cached, as installed", med(cold_cached), med(cc)),
        ("  CPU, user + system (s)", med(CPU["cold"]), med(CPU["ccusage"])),
        ("throughput (MB/s)", mb / med(cold), mb / med(cc)),
        ("warm `report daily --json`, no new data (s)", med(warm), med(cc)),
        ("  of which Python start-up (`python -c pass`)", med(startup), None),
        ("  the same with bytecode cached, as installed", med(cached), med(cc)),
        ("one appended line, in process (ms)", med(line), None),
        ("peak RSS, ingest / scan (MB)", max(cold_rss), max(cc_rss)),
        ("peak RSS, warm report (MB)", max(warm_rss), None),
    ]
    for name, ours, theirs in rows:
        ratio = f"{theirs / ours:>8.1f}x" if theirs else ""
        theirs_s = f"{theirs:>14.3f}" if theirs is not None else f"{'':>14}"
        print(f"{name:<44}{ours:>12.3f}{theirs_s}{ratio}")
    return 0


def cold_only(args: argparse.Namespace) -> int:
    """Cold ingest (and another checkout's, if given) against ccusage, taking turns for `args.runs` rounds."""
    corpus = corpus_dir(args.size_mb, args.corpus)
    mb = corpus_bytes(corpus) / 1e6
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(corpus)}
    # `python -m daemon` imports the daemon package of its working directory
    work = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    runners: dict[str, tuple[Path, dict[str, str]]] = {"baton": (ROOT, env)}
    if args.baton_root is not None:
        runners["baton@root"] = (args.baton_root.resolve(), env)
    if args.as_installed:  # bytecode cached, as `pip install .` leaves it (in a private prefix per checkout)
        for name, (cwd, run_env) in list(runners.items()):
            cached = {k: v for k, v in run_env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            cached["PYTHONPYCACHEPREFIX"] = str(work / f"pycache-{name}")
            runners[name] = (cwd, cached)
            argv = [sys.executable, "-m", "daemon", "ingest"]  # writes the bytecode cache
            timed(argv, {**cached, "BATON_HOME": str(work / f"warmup-{name}")}, "warmup", cwd)
    walls: dict[str, list[float]] = {}
    rss: dict[str, list[float]] = {}
    loads = []
    try:
        for r in range(args.runs):
            loads.append(os.getloadavg()[0])
            for name, (cwd, run_env) in runners.items():
                home = work / f"{name}-{r}"
                argv = [sys.executable, "-m", "daemon", "ingest"]
                wall, peak = timed(argv, {**run_env, "BATON_HOME": str(home)}, name, cwd)
                shutil.rmtree(home, ignore_errors=True)
                walls.setdefault(name, []).append(wall)
                rss.setdefault(name, []).append(peak)
            wall, peak = timed([args.ccusage, "daily", "--json", "--offline"], env, "ccusage")
            walls.setdefault("ccusage", []).append(wall)
            rss.setdefault("ccusage", []).append(peak)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    print(
        f"corpus: {mb:.0f} MB; {args.runs} rounds; load average (1 min) before the rounds: "
        f"{min(loads):.2f}-{max(loads):.2f}, after: {os.getloadavg()[0]:.2f}; cpus {os.cpu_count()}"
    )
    print(f"{'cold ingest / full scan':<24}{'wall median':>12}{'best':>8}{'CPU median':>12}{'peak RSS':>10}")
    for name, values in walls.items():
        print(
            f"{name:<24}{med(values):>12.3f}{min(values):>8.3f}{med(CPU[name]):>12.3f}{max(rss[name]):>9.0f}M"
        )
    ratio = med(walls["baton"]) / med(walls["ccusage"])
    print(f"baton / ccusage (wall medians): {ratio:.2f}")
    for name in runners:  # per round: both ran back to back, so a slow spell of a shared machine hits both
        paired = [b / c for b, c in zip(walls[name], walls["ccusage"], strict=True)]
        faster = sum(r < 1 for r in paired)
        print(
            f"{name} / ccusage, round by round: median {med(paired):.2f} "
            f"(range {min(paired):.2f}-{max(paired):.2f}); {name} faster in {faster} of {len(paired)} rounds"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
