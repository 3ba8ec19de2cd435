"""What a 32 px student can learn from a teacher that looks at 224 px: the teacher's accuracy on the
student's own resolution, and how often teacher and students agree.

Reads a finished run (nothing is retrained): its teacher (``<t>_Teacher.keras``) is scored on the
test images decoded at the teacher's size (what it was trained on) and on the same images decoded at
the student's size and enlarged back to the teacher's (all a student at ``image_size`` can see, as the
teacher sees it). The gap between the two is the detail the student's resolution removes; the
teacher's accuracy on the enlarged images is roughly the most it can pass on through its outputs.
Also, from the saved predictions: the share of test images on which the teacher and each seed's
distilled and scratch students give the same class.

    python bench/resolution_ceiling.py runs/lite0-224-s3 --teacher efficientnet_lite0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def agreement(run_dir: Path, teacher: str) -> list[dict]:
    from ctdistill.run.folder import predictions_dir, read_predictions, repeated_seeds, split_arrays

    names = json.loads((run_dir / "manifest.json").read_text())["dataset"]["class_names"]

    def predicted(model, seed=None):
        y, proba, _ = split_arrays(read_predictions(predictions_dir(run_dir, seed), model), "test", names)
        return y, proba.argmax(axis=1)

    y, taught = predicted(f"{teacher}_teacher")
    rows = []
    for seed in [None, *repeated_seeds(run_dir)]:
        for model in (f"{teacher}_student", "scratch_student"):
            _, pred = predicted(model, seed)
            rows.append({"seed": seed or 0, "model": model, "agree_with_teacher": float(np.mean(pred == taught)),
                         "accuracy": float(np.mean(pred == y))})
    return rows


def teacher_at_student_size(run_dir: Path, teacher: str) -> dict:
    import keras

    from ctdistill.data import load_dataset
    from ctdistill.models.teachers import teacher_size
    from ctdistill.run.data_steps import enlarged

    config = json.loads((run_dir / "config.json").read_text())
    side = teacher_size(teacher, config["weights"], config["image_size"], config.get("teacher_image_size"))
    model = keras.saving.load_model(run_dir / f"{teacher}_Teacher.keras", safe_mode=True, compile=False)
    out = {"teacher_side": side, "student_side": config["image_size"]}
    for name, size in (("teacher_size", side), ("student_size_enlarged", config["image_size"])):
        data = load_dataset(config["data"], size, config["channels"], config["seed"], crop=config["crop"])
        test = data.test if size == side else enlarged(data.test, side)
        proba = model.predict(test.x.astype(np.float32), batch_size=32, verbose=0)
        out[name] = float(np.mean(proba.argmax(axis=1) == test.y))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--teacher", required=True)
    args = parser.parse_args(argv)
    for row in agreement(args.run_dir, args.teacher):
        print(f"seed {row['seed']} {row['model']}: test accuracy {100 * row['accuracy']:.1f}%, agrees with the "
              f"teacher on {100 * row['agree_with_teacher']:.1f}% of test images")
    found = teacher_at_student_size(args.run_dir, args.teacher)
    print(f"teacher on test at its own {found['teacher_side']} px: {100 * found['teacher_size']:.1f}%; on the "
          f"{found['student_side']} px images enlarged to {found['teacher_side']} px: "
          f"{100 * found['student_size_enlarged']:.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
