"""``python tests/jax_compile_probe.py SIZE``: train a tiny student for 3 epochs on JAX, as the run does,
and print what JAX compiled (JSON): compilations per epoch, each compilation of a training or
evaluation step with its epoch, and the persistent cache's hits and misses.

Run in a fresh process by ``tests/test_caches.py`` (the backend is fixed at import, and a compiled
step lives in its process); ``CTDISTILL_CACHE`` / ``CTDISTILL_COMPILE_CACHE`` come from the environment.
Everything happens in :func:`main`: pytest's doctest collection imports this file, and importing it
must not choose the test process's Keras backend.
"""

import json
import os
import re
import sys


def main(size: int) -> dict:
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras

    from ctdistill.config import Config
    from ctdistill.core.caches import enable_compile_cache
    from ctdistill.data.synthetic import load_synthetic
    from ctdistill.models.student import build_student
    from ctdistill.training import fit as fitting

    events = {"compiles": 0, "hits": 0, "misses": 0}
    steps: list[tuple[int, str]] = []  # (epoch, train_step / test_step) of every compilation of a step
    per_epoch: list[int] = []

    def compiled(name, secs, fun_name="", **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            events["compiles"] += 1
            step = re.search(r"(train|test)_step", str(fun_name))  # the rest: scalar ops in callbacks
            if step:
                steps.append((len(per_epoch) + 1, step.group(0)))

    def cached(name, **kw):
        if name in ("/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"):
            events[name.rsplit("_", 1)[-1]] += 1

    jax.monitoring.register_event_duration_secs_listener(compiled)
    jax.monitoring.register_event_listener(cached)

    class Counting(fitting.EpochLog):
        """The run's own epoch log, also counting the compilations each epoch made."""

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            per_epoch.append(events["compiles"] - sum(per_epoch))

    folder = enable_compile_cache("jax")
    cfg = Config(weights="none", image_size=size, epochs=3, patience=3, batch_size=32, warmup_epochs=0)
    data = load_synthetic(size, 1, (25, 10, 4))  # 100 training (not a multiple of 32), 40 validation images
    keras.utils.set_random_seed(0)
    trainer = fitting.compile_classifier(build_student(data.input_shape, data.n_classes), cfg, 1e-3, data.train.y, 3)
    fitting.EpochLog = Counting
    fitting.fit(trainer, data, cfg, "probe", epochs=3)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder else []
    return {**events, "per_epoch": per_epoch, "steps": steps, "files": len(files)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
