"""Seconds per training epoch: scratch student vs distillation with cached teacher logits vs the
teacher run on every batch (the seed's way). Medians over several epochs, measured in one process.

Usage: python bench/distill_epoch.py [--data DIR] [--teacher resnet50] [--epochs 5] [--batch-size 256]
       python bench/distill_epoch.py --augmented [--views 8] ...   (the default recipe: augmentation on)

``--augmented`` compares, with ctdistill's augmentation on: the scratch student, distillation with
the teacher on every augmented batch, and distillation from a pool of ``--views`` augmented copies
whose teacher logits are computed once (``--teacher-views``); the pool's one-off cost is printed.

Without --data the built-in synthetic phantoms are used. The teacher is untrained (weights=None):
its forward cost, which is what this measures, does not depend on its weights.
"""

from __future__ import annotations

import argparse
import statistics
import time

# isort: off
import ctdistill  # noqa: F401  (sets TensorFlow's oneDNN switch before TensorFlow loads)
import keras

from ctdistill.config import Config
from ctdistill.data import load_dataset
from ctdistill.training.distill import make_distiller
from ctdistill.models.student import build_student
from ctdistill.models.teachers import build_teacher
from ctdistill.training.recipe import one_hot
from ctdistill.training.fit import as_float, compile_classifier
# isort: on


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t0)


def epoch_seconds(model, x, y, xv, yv, epochs, batch_size) -> float:
    timer = EpochTimer()
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs + 1, batch_size=batch_size, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[1:])  # epoch 1 includes graph tracing


def stream_epoch_seconds(model, train, valid, epochs) -> float:
    timer = EpochTimer()
    model.fit(train, validation_data=valid, epochs=epochs + 1, verbose=0, callbacks=[timer])
    return statistics.median(timer.times[1:])


def augmented(args, data) -> dict[str, float]:
    """Seconds per epoch with the default recipe's augmentation (teacher on every batch vs a view pool)."""
    from ctdistill.training.distill import view_pool_stream
    from ctdistill.training.recipe import training_batches, validation_batches

    cfg = Config.from_mapping({"weights": "none", "batch_size": args.batch_size, "epochs": args.epochs + 1,
                               "teacher_views": args.views})
    x, xv = as_float(data.train.x), as_float(data.valid.x)
    teacher = build_teacher(args.teacher, data.input_shape, data.n_classes, weights=None)
    valid = validation_batches(xv, data.valid.y, data.n_classes, cfg.batch_size)
    trainer = compile_classifier(build_student(data.input_shape, data.n_classes), cfg, 1e-3, data.train.y, cfg.epochs)
    train = training_batches(x, data.train.y, data.n_classes, cfg)
    results = {"scratch student (augmented)": stream_epoch_seconds(trainer, train, valid, args.epochs)}
    live = make_distiller(teacher, build_student(data.input_shape, data.n_classes), cfg, data.train.y, augment=True)
    results["distill, teacher on every augmented batch"] = stream_epoch_seconds(live, train, valid, args.epochs)
    t0 = time.perf_counter()
    pool = view_pool_stream(teacher, data, cfg)
    logits_valid = {"image": xv, "teacher_logits": teacher.predict(xv, batch_size=cfg.batch_size, verbose=0)}
    results[f"(one-off: {args.views} augmented views + teacher logits)"] = time.perf_counter() - t0
    pooled = make_distiller(teacher, build_student(data.input_shape, data.n_classes), cfg, data.train.y)
    valid_logits = validation_batches(logits_valid, data.valid.y, data.n_classes, cfg.batch_size)
    results[f"distill, pool of {args.views} views"] = stream_epoch_seconds(pooled, pool, valid_logits, args.epochs)
    results["scratch student"] = results["scratch student (augmented)"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data")
    parser.add_argument("--teacher", default="resnet50")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--augmented", action="store_true", help="the default recipe's augmentation on")
    parser.add_argument("--views", type=int, default=8, help="--augmented: augmented views in the pool")
    args = parser.parse_args()
    data = load_dataset(args.data, 32, 3)
    if args.augmented:
        report(args, data, augmented(args, data))
        return
    # No augmentation (the seed preset): the case where the teacher's logits can be cached.
    cfg = Config.from_mapping({"preset": "seed", "weights": "none", "batch_size": args.batch_size})
    x, xv = as_float(data.train.x), as_float(data.valid.x)
    y, yv = one_hot(data.train.y, data.n_classes), one_hot(data.valid.y, data.n_classes)
    teacher = build_teacher(args.teacher, data.input_shape, data.n_classes, weights=None)

    scratch = compile_classifier(build_student(data.input_shape, data.n_classes), cfg, 1e-3, data.train.y,
                                 args.epochs + 1)
    results = {"scratch student": epoch_seconds(scratch, x, y, xv, yv, args.epochs, args.batch_size)}

    live = make_distiller(teacher, build_student(data.input_shape, data.n_classes), cfg, data.train.y)
    results["distill, teacher on every batch"] = epoch_seconds(live, x, y, xv, yv, args.epochs, args.batch_size)

    t0 = time.perf_counter()
    logits = {n: teacher.predict(v, batch_size=args.batch_size, verbose=0) for n, v in (("train", x), ("valid", xv))}
    results["(one teacher pass over train+valid)"] = time.perf_counter() - t0
    cached = make_distiller(teacher, build_student(data.input_shape, data.n_classes), cfg, data.train.y)
    results["distill, cached teacher logits"] = epoch_seconds(
        cached, {"image": x, "teacher_logits": logits["train"]}, y,
        {"image": xv, "teacher_logits": logits["valid"]}, yv, args.epochs, args.batch_size)

    report(args, data, results)


def report(args, data, results: dict[str, float]) -> None:
    print(f"data: {data.source}, {len(data.train)} train images; teacher {args.teacher}; batch {args.batch_size}; "
          f"median of {args.epochs} epochs after the first")
    print("| what | seconds per epoch | × scratch |\n|---|---:|---:|")
    for name, sec in results.items():
        if name != "scratch student" or "scratch student (augmented)" not in results:
            print(f"| {name} | {sec:.2f} | {sec / results['scratch student']:.2f} |")


if __name__ == "__main__":
    main()
