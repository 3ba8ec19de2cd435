"""ctdistill against the seed's procedure (``bench/reference_seed.py``): same data, teachers and budget.

    python bench/pipeline_runs.py [--data DIR] [--quick] [--teachers a,b] [--epochs N] [--teacher-epochs N]

Each implementation runs in its own fresh process (one after the other, so they never share the
cores; determinism, which ctdistill switches on process-wide, cannot leak into the reference).
Teachers train from scratch (``weights=None``) in both: ImageNet weights cannot be downloaded on
the benchmark machine. ``epochs`` is the reference's fixed epoch count and ctdistill's maximum
(it stops early on the validation split, patience scaled to the budget as the default 50 is to 300).

Prints stage times and test accuracies of both, then as its last line
``speedup_vs_reference=<reference wall / ctdistill wall> accuracy_delta=<points>``: the mean, over
teachers, of ctdistill's distilled float student's test accuracy minus the reference's.

``--quick``: one teacher (ResNet50), 15 student / 5 teacher epochs; under 10 minutes on two cores.
``--crop``: the framing of both sides' images; ``none`` by default, the seed's whole images, so the delta measures
the procedure and not the crop to the body (worth +17.7 points on its own: BENCHMARKS.md, "Crop to the body");
``body`` crops for both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import DEFAULT_DATA, HERE

ALL_TEACHERS = "vgg16,vgg19,resnet50,densenet121,efficientnetb3,nasnetmobile,xception"


def config_values(args) -> dict:
    """The configuration both implementations share (ctdistill's recipe otherwise at its defaults)."""
    return {"data": args.data, "teachers": args.teachers.split(","), "weights": "none", "epochs": args.epochs,
            "teacher_epochs": args.teacher_epochs, "patience": max(3, round(args.epochs * 50 / 300)),
            "finetune_learning_rate": 1e-3, "bootstrap_resamples": 0, "crop": args.crop}


def epochs_run(out: Path, teachers) -> tuple[dict, dict]:
    """The epochs a finished ctdistill run trained (it stops early): per distilled student, and per
    teacher with the scratch student, read from the run's history files."""
    import pandas as pd

    from ctdistill.run import folder

    def rows(name: str) -> int:
        return len(pd.read_csv(out / name))

    students = {t: rows(folder.distill_history(t)) for t in teachers}
    others = {f"{t} teacher": rows(folder.teacher_history(t)) for t in teachers}
    others["scratch"] = rows(folder.SCRATCH_HISTORY)
    return students, others


def child_ctdistill(values: dict) -> dict:
    import pandas as pd

    from ctdistill.config import Config
    from ctdistill.run.pipeline import run

    with tempfile.TemporaryDirectory() as tmp:
        clock = time.perf_counter()
        out = run(Config.from_mapping(values), Path(tmp) / "run")
        wall = time.perf_counter() - clock
        timings = json.loads((out / "timings.json").read_text())
        summary = pd.read_csv(out / "summary.csv").set_index("model")["accuracy"]
        epochs, run_epochs = epochs_run(out, values["teachers"])
    teachers = timings["teachers"]
    seconds = {"teacher": sum(t["teacher_s"] for t in teachers.values()),
               "distill": sum(t["distill_s"] for t in teachers.values()),
               "scratch": timings["scratch_s"], "quantize": sum(t["quantize_s"] for t in teachers.values())}
    seconds["evaluate"] = wall - sum(seconds.values())  # data, audit, report (evaluation is inside each stage)
    accuracy = {t: {"teacher": summary[f"{t}_teacher"], "student": summary[f"{t}_student"],
                    "scratch": summary["scratch_student"], "student_int8": summary[f"{t}_student_int8"]}
                for t in values["teachers"]}
    return {"wall_s": round(wall, 1), "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "accuracy": accuracy, "student_epochs": epochs, "other_epochs": run_epochs}


def child_reference(values: dict) -> dict:
    from reference_seed import load_inputs, run_reference

    from ctdistill.config import Config

    cfg = Config.from_mapping(values)
    clock = time.perf_counter()
    data = load_inputs(cfg)  # the same inputs
    result = run_reference(data, cfg, cfg.teachers, cfg.epochs, cfg.teacher_epochs or cfg.epochs)
    result["wall_s"] = round(time.perf_counter() - clock, 1)
    return result


def run_child(which: str, values: dict) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join(
        [str(HERE), os.environ.get("PYTHONPATH", "")])}
    print(f"running {which} ...", flush=True)
    done = subprocess.run([sys.executable, __file__, "--child", which, "--values", json.dumps(values)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"{which} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: dict[str, dict]) -> str:
    stages = ("teacher", "distill", "scratch", "quantize", "evaluate")
    lines = ["| implementation | " + " | ".join(f"{s} s" for s in stages) + " | wall s |",
             "|---|" + "---:|" * (len(stages) + 1)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['seconds'][s]:.1f}" for s in stages) + f" | {r['wall_s']:.1f} |")
    lines += ["", "| implementation | teacher | test accuracy % teacher | distilled | scratch | distilled int8 |",
              "|---|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        for t, a in r["accuracy"].items():
            lines.append(f"| {name} | {t} | {100 * a['teacher']:.1f} | {100 * a['student']:.1f} | "
                         f"{100 * a['scratch']:.1f} | {100 * a['student_int8']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--quick", action="store_true",
                        help="one teacher (resnet50), 15 student / 5 teacher epochs (under 10 minutes)")
    parser.add_argument("--teachers", help="comma-separated (default: all seven; --quick: resnet50)")
    parser.add_argument("--epochs", type=int, help="student epochs (default 300; --quick 15)")
    parser.add_argument("--teacher-epochs", type=int, help="teacher epochs (default 300; --quick 5)")
    parser.add_argument("--crop", choices=("none", "body"), default="none",
                        help="both sides' framing (default none: the seed's whole images; body crops for both)")
    parser.add_argument("--child", choices=("ctdistill", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--values", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = child_ctdistill if args.child == "ctdistill" else child_reference
        print(json.dumps(child(json.loads(args.values)), default=float))
        return
    args.teachers = args.teachers or ("resnet50" if args.quick else ALL_TEACHERS)
    args.epochs = args.epochs or (15 if args.quick else 300)
    args.teacher_epochs = args.teacher_epochs or (5 if args.quick else 300)
    values = config_values(args)
    print(f"data {args.data}; teachers {args.teachers}; epochs {args.epochs} (teachers {args.teacher_epochs}); "
          f"{os.cpu_count()} cores", flush=True)
    results = {"reference (seed's procedure)": run_child("reference", values),
               "ctdistill": run_child("ctdistill", values)}
    print(table(results))
    ours, ref = results["ctdistill"], results["reference (seed's procedure)"]
    print(f"ctdistill student epochs (early stopping): {ours['student_epochs']}; "
          f"teachers and scratch student: {ours['other_epochs']}")
    delta = sum(ours["accuracy"][t]["student"] - ref["accuracy"][t]["student"] for t in ref["accuracy"])
    delta_int8 = sum(ours["accuracy"][t]["student_int8"] - ref["accuracy"][t]["student_int8"] for t in ref["accuracy"])
    n = len(ref["accuracy"])
    print(f"int8 accuracy delta (points): {100 * delta_int8 / n:+.1f}")
    print(f"speedup_vs_reference={ref['wall_s'] / ours['wall_s']:.2f} accuracy_delta={100 * delta / n:+.1f}")


if __name__ == "__main__":
    main()
