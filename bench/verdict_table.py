"""One Markdown row per finished run: its data, test split, chosen model, fitness and verdict warnings.

For the regression set (issue #27): a tiny run on each collection, then

    python bench/verdict_table.py runs/collections/*/

Numbers come from each run's own ``verdict.json``, ``manifest.json`` and ``timings.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(run_dir: Path) -> str:
    verdict = json.loads((run_dir / "verdict.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    counts = manifest["dataset"]["counts"]
    seconds = json.loads((run_dir / "timings.json").read_text())["total_s"]
    deploy, unfit = verdict["deploy"], verdict["unfit"]
    chosen = (f"{deploy['model']}: {100 * deploy['accuracy']:.1f}% ({100 * deploy['accuracy_lo']:.1f}–"
              f"{100 * deploy['accuracy_hi']:.1f}) of {deploy['n']}") if deploy else "none"
    fit = f"refused ({unfit['reason']})" if unfit else ("deploy" if deploy else "–")
    kinds = ", ".join(kind for kind, _ in verdict["warnings"]) or "none"
    return (f"| {run_dir.name} | {', '.join(f'{s} {sum(c.values())}' for s, c in counts.items())} | {chosen} | "
            f"{fit} | {kinds} | {seconds:.0f} s |")


def main(runs: list[str]) -> int:
    print("| run | images per split | chosen model: test accuracy (95% CI) | first line | warnings | wall |")
    print("|---|---|---|---|---|---|")
    for run_dir in runs:
        print(row(Path(run_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
