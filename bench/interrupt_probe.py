"""Ctrl-C at many moments of a real run: does every press stop it, with exit 130 and the resume line?

    python bench/interrupt_probe.py [--teacher densenet121] [--offsets 3,6,...] [--after TEXT] [--out probe.csv]

Each offset starts ``ctdistill run`` in a fresh process (a small run on the built-in phantoms: one
teacher from scratch, a few epochs, every default quantization mode), sends SIGINT that many seconds
after the start, and records the exit code, the stage the log had reached and the last stderr line.
A clean stop is exit 130 whose last line says "interrupted" (with "Resume with: ctdistill run --resume
..." once the run folder exists), or exit 0 when the run had finished; an ``internal error`` or a
traceback is a failure. ``--after`` counts the offsets from a log line (the quantization stage's,
say). The last offset's run is resumed, which must finish. This is the check behind issue #31's
"Ctrl-C during quantization / while a teacher compiles"; the table goes to docs/troubleshooting.md.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import ROOT

STAGE = re.compile(r"== ([^(\n]+)")


def ctdistill(*args: str) -> list[str]:
    return [sys.executable, "-m", "ctdistill.cli.main", *args]


def probe(offset: float, out: Path, teacher: str, after: str) -> dict:
    """One run interrupted ``offset`` seconds after the first log line matching ``after`` ("" = the start)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    config = out.with_suffix(".toml")
    config.write_text("synthetic_per_class = [8, 4, 4]\n")  # a file-only key
    args = ["run", "--config", str(config), "--teachers", teacher, "--weights", "none", "--image-size", "32",
            "--teacher-epochs", "1", "--epochs", "2", "--bootstrap-resamples", "0", "--out", str(out)]
    started = time.perf_counter()
    # A background shell starts its jobs with SIGINT ignored, and Python then leaves it ignored: give
    # the run the disposition of a command typed at a terminal.
    proc = subprocess.Popen(ctdistill(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    while after and not any(after in line for line in lines) and proc.poll() is None:
        time.sleep(0.05)
    try:
        proc.wait(offset)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    proc.wait(900)
    reader.join(10)
    stderr = "".join(lines)
    stages = STAGE.findall(stderr)
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or [""]
    stopped = proc.returncode == 130 and last[0].startswith(("interrupted", "error: interrupted"))
    # A press after the run's last line (its folder complete) meets Python's own handler on the way
    # out: killed by SIGINT (-2) as any Python program is, with nothing left undone.
    finished = "INFO deploy:" in stderr and proc.returncode in (0, -signal.SIGINT)
    return {"after": after or "start", "offset_s": offset, "exit": proc.returncode,
            "stage": stages[-1].strip()[:48] if stages else "start-up",
            "clean": (stopped or finished) and "Traceback" not in stderr and "internal error" not in stderr,
            "resume line": "Resume with: ctdistill run --resume" in stderr,
            "last line": last[0][:100], "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default="densenet121")
    parser.add_argument("--offsets", default="3,6,9,12,15,20,25,30,40,50,60,75,90",
                        help="seconds after --after's line (or the start) at which to press Ctrl-C")
    parser.add_argument("--after", default="", help="count the offsets from the first log line containing this "
                                                    "(e.g. 'quantizing the student'); default: the start")
    parser.add_argument("--out", help="CSV file for the table")
    args = parser.parse_args()
    import pandas as pd

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for offset in (float(o) for o in args.offsets.split(",")):
            rows.append(probe(offset, Path(tmp) / f"run-{offset:g}", args.teacher, args.after))
            print(rows[-1], flush=True)
            if rows[-1]["exit"] not in (0, 130, -signal.SIGINT):
                sys.exit(f"the run itself failed: {rows[-1]['last line']}")
        resumed = subprocess.run(ctdistill("run", "--resume", str(Path(tmp) / f"run-{offset:g}")),
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    print(f"resume of the last run: exit {resumed.returncode}")
    if args.out:
        table.to_csv(args.out, index=False)
    sys.exit(0 if table["clean"].all() and resumed.returncode == 0 else 1)


if __name__ == "__main__":
    main()
