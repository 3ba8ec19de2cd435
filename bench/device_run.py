"""Train ctdistill runs on a GPU box (JAX, no TensorFlow) in parallel, ship them back, quantize here.

    # on the GPU machine (its checkout holds the prepared arrays and wheels; see BENCHMARKS.md):
    python bench/device_run.py train --data prepared32 --out $OUT --budget 540 \
        --run "s0: --seed 0 --teachers densenet121,resnet50 --ensemble mean" \
        --run "s1: --seed 1 --teachers densenet121,resnet50 --ensemble mean"
    # back here, with TensorFlow and LiteRT:
    python bench/device_run.py finish --packed DEVICE_FILES --data prepared32 --into runs/gpu

``train`` starts one ``ctdistill run`` per ``--run`` (name: extra flags) side by side, each with
``KERAS_BACKEND=jax`` and its own GPU memory growth, stops them at ``--budget`` seconds (a stopped
run keeps its finished stages), then packs every run folder and its log into ``runs.tar.gz``, split
in parts of 15 MB: without the teachers' model files (too large to ship; their metrics stay in the
stage records), and for a ``--light`` run (timings only) without any model file. ``finish``
unpacks, runs ``ctdistill quantize`` on every complete run (the deferred quantization, gate and
evaluation) and prints each run's stage times, first-epoch and median epoch times, and test scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import time
from pathlib import Path

PART_BYTES = 15 * 1024 * 1024


def train(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = Path(args.workdir)
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    procs = {}
    for spec in args.run:
        name, _, flags = spec.partition(":")
        name = name.strip()
        cmd = [sys.executable, "-m", "ctdistill.cli.main", "run", "--data", args.data, "--out", str(runs_dir / name),
               *shlex.split(args.common), *shlex.split(flags)]
        runs_dir.mkdir(parents=True, exist_ok=True)
        log = open(runs_dir / f"{name}.log", "w")  # noqa: SIM115  (closed below, when its process ends)
        log.write(" ".join(cmd) + "\n")
        log.flush()
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log)
    started = time.time()
    while any(p.poll() is None for p, _ in procs.values()) and time.time() - started < args.budget:
        time.sleep(2)
    for proc, log in procs.values():
        if proc.poll() is None:
            proc.terminate()  # finished stages are kept; the rest can be resumed
            log.write(f"\n[device_run] stopped at the {args.budget}s budget\n")
        proc.wait()
        log.close()
    status = {name: proc.returncode for name, (proc, _) in procs.items()}
    (out / "status.json").write_text(json.dumps({"returncodes": status, "seconds": round(time.time() - started)}))
    for name in procs:
        print(f"== {name} (exit {status[name]}):", *(runs_dir / f"{name}.log").read_text().splitlines()[-6:], sep="\n")
    pack(runs_dir, list(procs), set(args.light), out)


def pack(runs_dir: Path, names: list[str], light: set[str], out: Path) -> None:
    """``runs.tar.gz.partNN`` in ``out``: every run folder and log, without teachers' model files
    (and without any model file for the ``light`` runs)."""
    def keep(name: str):
        models = (".keras", ".h5", ".tflite") if name in light else ("_Teacher.keras",)
        return lambda t: None if t.name.endswith(models) else t

    archive = out / "runs.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:  # weights barely compress: be quick
        for name in names:
            for path in (runs_dir / name, runs_dir / f"{name}.log"):
                if path.exists():
                    tar.add(path, arcname=path.name, filter=keep(name))
    data = archive.read_bytes()
    archive.unlink()
    for i in range(0, len(data), PART_BYTES):
        (out / f"runs.tar.gz.part{i // PART_BYTES:02d}").write_bytes(data[i:i + PART_BYTES])
    print(f"packed {len(data) / 1e6:.1f} MB in {-(-len(data) // PART_BYTES)} part(s)")


def finish(args: argparse.Namespace) -> None:
    packed, into = Path(args.packed), Path(args.into)
    into.mkdir(parents=True, exist_ok=True)
    blob = b"".join(p.read_bytes() for p in sorted(packed.glob("runs.tar.gz.part*")))
    archive = into / "runs.tar.gz"
    archive.write_bytes(blob)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    for run in sorted(p for p in into.iterdir() if (p / "config.json").is_file()):
        if args.quantize and list(run.glob("*_Student.keras")):
            done = subprocess.run([sys.executable, "-m", "ctdistill.cli.main", "quantize", str(run),
                                   "--data", args.data,
                                   "-q"], capture_output=True, text=True)
            print(f"{run.name}: quantize exit {done.returncode} {done.stderr.strip()[-300:]}")
        print(stage_table(run))


def stage_table(run: Path) -> str:
    """Each stage's seconds, and the first-epoch against the median epoch time of each history."""
    lines = [f"## {run.name}"]
    for record in sorted((run / "stages").glob("*.json")):
        stage = json.loads(record.read_text())
        lines.append(f"- {stage['stage']}: {stage['seconds']:.0f} s")
    import pandas as pd

    for history in sorted(run.glob("*.csv")):
        if (history.name.endswith(("_teachermodel.csv", "_Distiller_history.csv"))
                or history.name == "Scratch_history.csv"):
            frame = pd.read_csv(history)
            if "seconds" in frame and len(frame) > 2:
                lines.append(f"- {history.stem}: {len(frame)} epochs, first {frame['seconds'].iloc[0]:.1f} s, "
                             f"median {frame['seconds'].iloc[1:].median():.3f} s")
    summary = run / "summary.csv"
    if summary.is_file():
        table = pd.read_csv(summary)[["model", "accuracy", "accuracy_dedup", "f1", "size_mb"]]
        lines.append(table.to_markdown(index=False, floatfmt=".4f"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True, help="folder for the packed runs and logs ($OUT)")
    t.add_argument("--workdir", default="/tmp/device-runs")
    t.add_argument("--budget", type=float, default=540)
    t.add_argument("--common", default="", help="flags for every run")
    t.add_argument("--run", action="append", required=True, help="NAME: flags of one run")
    t.add_argument("--light", action="append", default=[], help="a run whose model files stay behind (timings only)")
    f = sub.add_parser("finish")
    f.add_argument("--packed", required=True)
    f.add_argument("--data", required=True)
    f.add_argument("--into", required=True)
    f.add_argument("--no-quantize", dest="quantize", action="store_false")
    args = parser.parse_args(argv)
    {"train": train, "finish": finish}[args.command](args)


if __name__ == "__main__":
    main()
