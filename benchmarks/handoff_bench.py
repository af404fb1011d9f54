"""How long the handoff side of baton takes: the control socket, the schedule commands, a big handoff.

    python benchmarks/handoff_bench.py [--runs 7]

Prints medians of several runs. It uses a private BATON_HOME and a stand-in daemon (tests/handoff/harness.py,
which hosts the scheduler and the control socket exactly as `baton run` does). Whole-process figures include
Python start-up; PYTHONDONTWRITEBYTECODE=1 (as here) makes every run pay for compiling imports.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def baton(*args: str, stdin: str | None = None) -> None:
    subprocess.run([sys.executable, "-m", "daemon", *args], input=stdin, capture_output=True, text=True,
                   check=True, cwd=ROOT)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    home = Path(tempfile.mkdtemp(prefix="baton-bench-"))
    os.environ["BATON_HOME"] = str(home / "baton")
    project = home / "project"
    project.mkdir()

    from daemon import handoff as ho
    from daemon.control import request
    from daemon.launch import build_prompt
    from daemon.paths import BatonPaths

    paths = BatonPaths.from_env().ensure()
    lines = "\n".join(f'line {i}: it\'s "quoted" $(x) `y`' for i in range(3000))
    big = ho.Handoff(
        id="20261123-180000-bench", project=str(project), created=datetime.now(UTC), blockers=lines
    )
    template = ho.load_template(paths)
    text = ho.render(big, template)
    render = median_ms(lambda: ho.render(big, template), runs)
    parse = median_ms(lambda: ho.parse(text), runs)
    prompt = median_ms(lambda: build_prompt(ho.body_of(text), "", str(project)), runs)
    size = len(text.encode()) / 1024
    print(f"handoff of {size:.0f} KB: render {render:.2f} ms, parse {parse:.2f} ms, prompt {prompt:.2f} ms")

    out = subprocess.run([sys.executable, "-m", "daemon", "handoff", "new", "--project", str(project),
                          "--objective", "bench", "--start", "manual"], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    hid = Path(out.stdout.strip()).stem
    print(
        f"baton schedule list, no daemon:      {median_ms(lambda: baton('schedule', 'list'), runs):7.1f} ms"
    )
    daemon = subprocess.Popen([sys.executable, str(ROOT / "tests" / "handoff" / "harness.py")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        assert daemon.stdout is not None and daemon.stdout.readline().startswith("ready")
        ping = median_ms(lambda: request(paths, {"op": "ping"}), runs)
        print(f"control socket round trip (ping):    {ping:7.2f} ms")
        listed = median_ms(lambda: baton("schedule", "list"), runs)
        print(f"baton schedule list, daemon running: {listed:7.1f} ms")
        add = median_ms(lambda: baton("schedule", "--at", "+1h", "--handoff", hid), runs)
        print(f"baton schedule --at +1h (daemon):    {add:7.1f} ms")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
