"""Seconds per training epoch of teachers (untrained, full network trainable) on synthetic 32x32 images.

Usage: python bench/teacher_epoch.py [--images 320] [--epochs 3] [--batch-size 256] TEACHER [TEACHER ...]

Compare TensorFlow settings by running it twice, e.g. with TF_ENABLE_ONEDNN_OPTS=0 and =1
(ctdistill only sets that variable when it is unset).
"""

from __future__ import annotations

import argparse
import os
import time

# isort: off
import ctdistill  # noqa: F401  (sets TensorFlow's oneDNN switch before TensorFlow loads, unless set)
import numpy as np

from ctdistill.config import Config
from ctdistill.models.teachers import build_teacher
from ctdistill.training.recipe import one_hot
from ctdistill.training.fit import compile_classifier
# isort: on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teachers", nargs="+")
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.images, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 4, args.images)
    y = one_hot(labels, 4)
    cfg = Config.from_mapping({"preset": "seed", "weights": "none"})
    print(f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}; {args.images} images, "
          f"batch {args.batch_size}; seconds per epoch (epoch 1 includes graph tracing)")
    for name in args.teachers:
        model = build_teacher(name, (32, 32, 3), 4, weights=None)
        model = compile_classifier(model, cfg, 1e-4, labels, args.epochs)  # the model to fit
        times = []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0, validation_data=(x[:80], y[:80]))
            times.append(round(time.perf_counter() - t0, 1))
        print(f"{name}: {times}", flush=True)


if __name__ == "__main__":
    main()
