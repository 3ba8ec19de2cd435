"""Mean ± standard deviation over runs that differ only in --seed, as Markdown, for BENCHMARKS.md.

Usage: python bench/seeds_table.py RUN_DIR [RUN_DIR ...]

Reads each run's summary.csv (official test split and the de-duplicated view) and timings.json;
nothing is typed in by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def main(run_dirs: list[Path]) -> None:
    frames = []
    for run_dir in run_dirs:
        summary = pd.read_csv(run_dir / "summary.csv")
        seed = json.loads((run_dir / "config.json").read_text())["seed"]
        frames.append(summary.assign(seed=seed))
    table = pd.concat(frames)
    groups = table.groupby("model", sort=False)

    def fmt(column):
        return groups[column].apply(lambda v: f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}" if len(v) > 1
                                    else f"{100 * v.mean():.1f}")

    out = pd.DataFrame({"seeds": groups.size(), "test accuracy %": fmt("accuracy"),
                        "de-duplicated accuracy %": fmt("accuracy_dedup"), "macro F1 %": fmt("f1"),
                        "per seed (test %)": groups["accuracy"].apply(lambda v: ", ".join(f"{100 * a:.1f}" for a in v)),
                        "file MB": groups["size_mb"].first().round(3)})
    print(f"Runs: {', '.join(str(d) for d in run_dirs)}\n")
    print(out.reset_index().to_markdown(index=False))
    times = [json.loads((d / "timings.json").read_text())["total_s"] for d in run_dirs]
    print(f"\nWall time per run: {', '.join(f'{t / 60:.0f} min' for t in times)}")


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
