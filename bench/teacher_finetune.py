"""Fine-tune one teacher with the run's own ``train_teacher`` on the run's split; print its accuracies.

The teacher stage of ``ctdistill run`` alone (the same data steps, split and recipe), so teacher
recipes can be compared without training students. Keys of ``Config`` are given as JSON.

    python bench/teacher_finetune.py --data ../shared/data/chest-ct-scan \
        '{"teachers": ["efficientnet_lite0"], "frozen_epochs": 5, "teacher_epochs": 12, "warmup_epochs": 1}'
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("config", help="Config keys as a JSON object (teachers: one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from ctdistill.config import Config
    from ctdistill.models.inference import keras_logits
    from ctdistill.models.teachers import teacher_size
    from ctdistill.run.data_steps import audit_step, load_data
    from ctdistill.run.steps import seed_everything
    from ctdistill.training.teachers import train_teacher

    cfg = Config.from_mapping({**json.loads(args.config), "data": args.data})
    seed_everything(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        data = audit_step(cfg, load_data(cfg), Path(tmp))
    name = cfg.teachers[0]
    big = data.at_size(teacher_size(name, cfg.weights, cfg.image_size, cfg.teacher_image_size))
    started = time.perf_counter()
    teacher, history = train_teacher(name, big, cfg)
    wall = time.perf_counter() - started
    right = {s: keras_logits(teacher, big.split(s).x.astype("float32"), 32).argmax(1) == big.split(s).y
             for s in ("valid", "test")}
    print(history.to_string())
    print("RESULT", json.dumps({"config": json.loads(args.config), "valid": round(100 * right["valid"].mean(), 1),
                                "test": round(100 * right["test"].mean(), 1),
                                "test_dedup": round(100 * right["test"][big.dedup_test].mean(), 1),
                                "epochs": len(history), "wall_s": round(wall)}))


if __name__ == "__main__":
    main()
