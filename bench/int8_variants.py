"""Where a student's full-int8 accuracy goes: its int8 file converted three ways, scored on the run's test split.

    python bench/int8_variants.py RUN --student efficientnet_lite2 [--seeds 0,1]

For each seed's ``<student>_Student.keras`` (or ``Scratch_Student.keras``) of a finished run
(``seeds/seed<k>/`` for repeated seeds), on the test images the run made (``kd_settings.run_data``: its
config, crop and split):

* ``int8``: what the run ships (``quantize.convert``: int8 input and output, 200 training images calibrate);
* ``int8, float I/O``: the same with float input and output (is it the input or output quantization?);
* ``int8, all training images``: every training image calibrates (is it the calibration sample?).

Prints the float student's accuracy, each variant's accuracy and its agreement with the float student.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import use_checkout


def convert(folder: str, samples: np.ndarray, int8_io: bool, path: Path) -> Path:
    """The exported model at ``folder`` as the run's int8 (``quantize.convert.QUANT_MODES``), calibrated on
    ``samples``; ``int8_io=False`` gives it float input and output instead."""
    import tensorflow as tf

    from ctdistill.quantize.convert import QUANT_MODES

    def representative():
        for sample in samples:
            yield [sample[None]]

    converter = tf.lite.TFLiteConverter.from_saved_model(folder)
    QUANT_MODES["int8"](converter, tf, representative)
    if not int8_io:
        converter.inference_input_type = converter.inference_output_type = tf.float32
    path.write_bytes(converter.convert())
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--student", required=True,
                        help="the teacher whose distilled student is converted, or 'scratch' (the scratch student)")
    parser.add_argument("--seeds", default="0", help="seeds of the run's students")
    args = parser.parse_args(argv)
    from kd_settings import run_data

    from ctdistill.models.inference import LiteRTModel, load_model, predict_keras
    from ctdistill.quantize.convert import representative_samples, saved_model
    from ctdistill.run.folder import SCRATCH_MODEL, seed_dir, student_model

    cfg, data = run_data(args.run_dir)
    x, y = data.test.x.astype(np.float32), data.test.y
    shipped = representative_samples(data.train.x)  # the run's calibration sample: the same for every seed
    variants = {"int8": (shipped, True), "int8, float I/O": (shipped, False),
                "int8, all training images": (data.train.x.astype(np.float32), True)}
    print("| seed | float % | variant | int8 % | agrees with float % |\n|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        folder = args.run_dir if seed == cfg.seed else seed_dir(args.run_dir, seed)
        model = load_model(folder / (SCRATCH_MODEL if args.student == "scratch" else student_model(args.student)))
        float_pred = predict_keras(model, x).argmax(axis=1)
        with tempfile.TemporaryDirectory() as tmp, saved_model(model) as exported:  # one export, three conversions
            for name, (samples, int8_io) in variants.items():
                path = convert(exported, samples, int8_io, Path(tmp) / "student.tflite")
                pred = LiteRTModel(path, num_threads=1).predict_proba(x).argmax(axis=1)
                print(f"| {seed} | {100 * np.mean(float_pred == y):.1f} | {name} | {100 * np.mean(pred == y):.1f} | "
                      f"{100 * np.mean(pred == float_pred):.1f} |", flush=True)


if __name__ == "__main__":
    use_checkout()
    main()
