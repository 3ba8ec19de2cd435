"""The cache folders (issue #30): the compiled-step cache is used by a second run of the same model,
missed by another model, off when switched off; the training step compiled once, nothing after the
first epoch; ``--cache-dir``
and ``--no-compile-cache`` reach the library; ``doctor`` shows the sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ctdistill.cli.main import main, use_caches
from ctdistill.core import caches

PROBE = Path(__file__).with_name("jax_compile_probe.py")


def compiled(cache: Path, size: int, switch: str | None = None) -> dict:
    """What a fresh JAX process compiled while training a tiny student for 3 epochs (``jax_compile_probe``)."""
    env = {**os.environ, caches.CACHE_ENV: str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(caches.SWITCH_ENV, None)
    if switch:
        env[caches.SWITCH_ENV] = switch
    done = subprocess.run([sys.executable, str(PROBE), str(size)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_compiled_step_cache_serves_a_second_run_and_misses_another_model(tmp_path):
    pytest.importorskip("jax")
    first, second = compiled(tmp_path, 16), compiled(tmp_path, 16)
    other = compiled(tmp_path, 20)  # another input shape: another program
    assert first["misses"] > 0 and first["hits"] == 0 and first["files"] >= first["misses"]
    assert second["hits"] == first["misses"] and second["misses"] == 0  # nothing compiled again
    assert other["misses"] > 0 and other["files"] > second["files"]  # stale entries are never reused
    for found in (first, second, other):
        # One training step, compiled once: every training batch is full (a short last batch was a
        # second shape, and a second compilation as long as the first); nothing compiled after epoch 1
        # but scalar comparisons in the callbacks. Validation's 40 rows go in 2 batches of 20: one
        # test_step (batches of 32 and 8 compiled it twice).
        assert found["steps"] == [[1, "train_step"], [1, "test_step"]], found
    off = compiled(tmp_path / "off", 16, switch="off")
    assert off["hits"] == off["misses"] == off["files"] == 0
    assert not (tmp_path / "off").exists()


def test_cache_flags_reach_the_library(tmp_path, monkeypatch):
    for key in (caches.CACHE_ENV, caches.SWITCH_ENV, "TF_XLA_FLAGS"):  # restored after the test, set or not
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    use_caches(str(tmp_path / "c"), compile_cache=True)
    assert caches.cache_root() == tmp_path / "c"
    assert caches.compile_cache_dir("jax") == tmp_path / "c" / "compiled" / "jax"
    assert f"--tf_xla_persistent_cache_directory={tmp_path / 'c' / 'compiled' / 'tensorflow'}" in \
        os.environ["TF_XLA_FLAGS"]
    use_caches(None, compile_cache=False)
    assert caches.compile_cache_dir("jax") is None and caches.enable_compile_cache("jax") is None


def test_doctor_shows_where_the_caches_are_and_their_size(tmp_path, monkeypatch, capsys):
    import keras

    backend = keras.backend.backend()
    monkeypatch.setenv(caches.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(caches.SWITCH_ENV, raising=False)
    (tmp_path / "compiled" / backend).mkdir(parents=True)
    (tmp_path / "compiled" / backend / "entry").write_bytes(b"x" * 2_000_000)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"cache: {tmp_path} (1 files, 2.0 MB in all" in out
    assert f"compiled training steps ({backend}): {tmp_path / 'compiled' / backend}, 1 files, 2.0 MB" in out
