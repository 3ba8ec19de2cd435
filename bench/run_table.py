"""Print a finished run's accuracy table and stage times as Markdown, for BENCHMARKS.md.

Usage: python bench/run_table.py RUN_DIR

Numbers come from the run's own summary.csv, timings.json and manifest.json; nothing is typed in
by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def main(run_dir: Path) -> None:
    summary = pd.read_csv(run_dir / "summary.csv")
    timings = json.loads((run_dir / "timings.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    counts = manifest["dataset"]["counts"]
    print(f"Data: {manifest['dataset']['source']} "
          f"({', '.join(f'{s} {sum(c.values())}' for s, c in counts.items())}); "
          f"keras {manifest['versions'].get('keras')}, tensorflow "
          f"{manifest['versions'].get('tensorflow-cpu') or manifest['versions'].get('tensorflow')}, "
          f"ai-edge-litert {manifest['versions'].get('ai-edge-litert')}; revision {manifest['git_revision']}\n")
    table = summary.assign(accuracy=(100 * summary["accuracy"]).round(1), f1=summary["f1"].round(3),
                           size_mb=summary["size_mb"].round(3))
    print(table[["model", "accuracy", "f1", "size_mb", "params"]]
          .rename(columns={"accuracy": "test accuracy %", "f1": "macro F1", "size_mb": "file MB"})
          .to_markdown(index=False))
    stages = pd.DataFrame(timings["teachers"]).T.rename_axis("teacher").reset_index()
    print(f"\nWall time per stage (seconds; total {timings['total_s']:.0f} s, of which the scratch "
          f"baseline {timings['scratch_s']:.0f} s, trained once per run):\n")
    print(stages.to_markdown(index=False))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
