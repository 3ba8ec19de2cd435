"""Start-up cost of the commands a user waits for: a configuration error, and ``predict`` on a .tflite.

    python bench/startup.py [--src OTHER/src ...] [--repeats 7]

Each command runs in a fresh process ``--repeats`` times, interleaved across the source trees so
that machine noise hits them alike; the table gives the median wall time per tree and command.
``--src`` adds another ctdistill source tree to compare with (for example a worktree of an older
revision: ``git worktree add /tmp/old <rev>`` then ``--src /tmp/old/src``); the checkout's own
``src`` is always measured. The .tflite model is a fresh seed student converted to int8 with this
checkout's converter, with a model card, so every tree predicts with the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import HERE

COMMANDS = {
    "run --epochs -1 (config error)": ["run", "--epochs", "-1"],
    "run --teachers alexnet (config error)": ["run", "--teachers", "alexnet"],
    "run --data /no/such/folder": ["run", "--data", "/no/such/folder"],
    "predict model.tflite image.png": ["predict", "{model}", "{image}"],
}


def make_model(folder: Path) -> tuple[Path, Path]:
    """An int8 student with its card, and one PNG to predict."""
    import numpy as np
    from PIL import Image

    from ctdistill.models.student import build_student
    from ctdistill.quantize.convert import convert_all
    from ctdistill.run.folder import write_json

    rng = np.random.default_rng(0)
    model = convert_all(build_student((32, 32, 3), 4), ("int8",), rng.integers(0, 255, (16, 32, 32, 3), np.uint8),
                        lambda m: folder / f"student_{m}.tflite")["int8"]
    write_json(Path(f"{model}.json"), {"input": {"height": 32, "channels": 3}, "class_names": list("abcd"),
                                       "mode": "int8", "kind": "quantized"})
    image = folder / "slice.png"
    Image.fromarray(rng.integers(0, 255, (300, 420), np.uint8)).save(image)
    return model, image


def time_once(src: Path, args: list[str]) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(src), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "ctdistill.cli.main", *args], env=env, capture_output=True)
    return time.perf_counter() - start, done.returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, action="append", default=[], help="another source tree to compare")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    trees = [HERE.parent / "src", *args.src]
    with tempfile.TemporaryDirectory() as tmp:
        model, image = make_model(Path(tmp))
        times: dict[tuple[str, str], list[float]] = {}
        codes: dict[tuple[str, str], int] = {}
        for _ in range(args.repeats):
            for name, command in COMMANDS.items():
                filled = [a.format(model=model, image=image) for a in command]
                for src in trees:
                    seconds, code = time_once(src, filled)
                    times.setdefault((str(src), name), []).append(seconds)
                    codes[(str(src), name)] = code
    print("| command | " + " | ".join(f"`{t}` median s (exit code)" for t in trees) + " |")
    print("|---|" + "---|" * len(trees))
    for name in COMMANDS:
        cells = [f"{statistics.median(times[(str(t), name)]):.2f} ({codes[(str(t), name)]})" for t in trees]
        print(f"| `{name}` | " + " | ".join(cells) + " |")
    print(json.dumps({f"{t}|{n}": round(statistics.median(v), 3) for (t, n), v in times.items()}))


if __name__ == "__main__":
    main()
