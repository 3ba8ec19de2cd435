"""Run the quantization safety gate on a finished run's distilled student, without retraining.

Usage: python bench/quant_gate.py RUN_DIR TEACHER [--max-drop 1.0] [--out DIR]

Rebuilds the run's data split from its config.json (same data, seed, split rules), loads
``{TEACHER}_Student.keras``, converts it to full int8 and runs ``ctdistill.quantize.gate.run_gate`` on
the validation split; then scores every attempt on the test split too (for the record only: the
gate never looks at test). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("teacher")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from ctdistill.config import Config
    from ctdistill.models.inference import LiteRTModel, load_model, predict_keras
    from ctdistill.quantize.convert import convert_all
    from ctdistill.quantize.gate import run_gate
    from ctdistill.run.book import saved_values
    from ctdistill.run.data_steps import audit_step, load_data

    cfg = Config.from_mapping(saved_values(args.run_dir), "config.json")  # with the legacy values of an older run
    out = args.out or Path(tempfile.mkdtemp(prefix="gate-"))
    data = audit_step(cfg, load_data(cfg), out)
    student = load_model(args.run_dir / f"{args.teacher}_Student.keras")
    files = convert_all(student, ("int8",), data.train.x, lambda m: out / f"student_{m}.tflite")
    decision, attempts = run_gate(student, files, data.train.x, data.valid.x, data.valid.y, args.max_drop,
                                  lambda m: out / f"student_{m}.tflite")
    x_test = data.test.x.astype(np.float32)
    rows = [{"model": "float32 (Keras)", "valid %": 100 * np.mean(predict_keras(student, data.valid.x).argmax(1)
                                                                  == data.valid.y),
             "test %": 100 * np.mean(predict_keras(student, x_test).argmax(1) == data.test.y)}]
    for a in attempts:
        test = np.mean(LiteRTModel(out / a.file).predict_proba(x_test).argmax(1) == data.test.y)
        rows.append({"model": a.mode, "valid %": 100 * a.valid_accuracy, "test %": 100 * test,
                     "drop on valid (pts)": a.drop_points, "passed": a.passed,
                     "kept in float": len(a.float_layers) or "", "KB": (out / a.file).stat().st_size // 1000})
    print(f"run {args.run_dir}, teacher {args.teacher}, limit {args.max_drop} points; decision: {decision}\n")
    print(pd.DataFrame(rows).round(1).to_markdown(index=False))


if __name__ == "__main__":
    main()
