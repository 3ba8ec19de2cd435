"""Inference speed of the student: int8 LiteRT against Keras float32, side by side in one run.

    python bench/inference_speed.py [--data DIR] [--epochs 20] [--calls 200] [--batch 256] [--keep DIR]

Trains the seed student from scratch on the real data for ``--epochs`` (speed does not depend on
how well it is trained; the int8 calibration uses real training images, as a run does), exports
it with the run's own converter (dynamic, float16, int8), and times every file with
``ctdistill bench``'s code: batch-1 latency and throughput on batches of ``--batch``, with 1 thread
and with all cores; Keras both through ``predict_on_batch`` and through ``predict``. Prints the
table, then as its last line the throughput ratios of int8 over Keras at all cores:
``int8_vs_keras_predict=<x> int8_vs_keras_predict_on_batch=<x>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from _common import DEFAULT_DATA, use_checkout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--keep", type=Path, help="keep the model files in this new folder")
    args = parser.parse_args(argv)

    import ctdistill  # noqa: F401  (TensorFlow settings first)
    from ctdistill.assess.latency import bench_models
    from ctdistill.config import Config
    from ctdistill.quantize.convert import convert_all
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.fit import train_scratch

    cfg = Config.from_mapping({"data": args.data, "teachers": ["vgg16"], "weights": "none", "epochs": args.epochs})
    cfg = dataclasses.replace(cfg, deterministic=False)  # op determinism would slow Keras here, not in `bench`
    seed_everything(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=args.keep is None)
        data = audit_step(cfg, load_data(cfg), Path(tmp))
        student, _ = train_scratch(data, cfg, "inference bench")
        keras_file = folder / "student.keras"
        student.save(keras_file)
        files = convert_all(student, ("dynamic", "float16", "int8"), data.train.x,
                            lambda mode: folder / f"student_{mode}.tflite")
        table = bench_models([keras_file, *files.values()], calls=args.calls, batch=args.batch,
                             progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(table.drop(columns=["file"]).to_markdown(index=False, floatfmt=".3f"))
    top = table[table["threads"] == table["threads"].max()].set_index("format")["throughput_img_s"]
    print(f"int8_vs_keras_predict={top['litert int8'] / top['keras float32 predict']:.2f} "
          f"int8_vs_keras_predict_on_batch={top['litert int8'] / top['keras float32']:.2f}")


if __name__ == "__main__":
    use_checkout()
    main()
