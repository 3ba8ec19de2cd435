"""Completion records: what lets ``ctdistill run --resume RUN_DIR`` skip finished work safely.

A stage (the scratch baseline, one teacher, its distilled student, its quantized models, the
ensemble teacher, the repeated seeds) leaves ``stages/<stage>.json`` when it has finished: a key
(the hash of the configuration and data that produced it, and of the records of the stages it
builds on), every file it wrote with its sha256, its result (summary rows) and its duration. On
resume a stage whose record has the same key and whose files are unchanged is not recomputed; any
other stage runs again from its start, replacing its half-written files (every write is atomic).

Example:
    >>> book = Stages(run_dir, run_key(cfg.to_dict(), data.fingerprint))      # doctest: +SKIP
    >>> teacher, row = book.run("teacher-vgg16", train_it, restore=load_it)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctdistill.core.errors import ConfigError, CtdistillError, DataError
from ctdistill.core.interrupt import stop_if_pressed
from ctdistill.core.progress import PROGRESS
from ctdistill.run.folder import CONFIG, MANIFEST, STAGES, read_json, write_json

log = logging.getLogger("ctdistill")
STAGES_DIR = STAGES


class RunInterrupted(CtdistillError):
    """Ctrl-C during a run: finished stages are kept; the message says how to resume."""

    exit_code = 130

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; finished stages are kept in {run_dir}. Resume with: "
                         f"ctdistill run --resume {run_dir}")


def run_key(config: dict, fingerprint: str) -> str:
    """The hash of everything a run's results depend on: its configuration and its data."""
    return _digest(json.dumps({"config": config, "data": fingerprint}, sort_keys=True).encode())


class Stages:
    """The completion records of one run folder."""

    def __init__(self, run_dir: Path, key: str):
        self.run_dir, self.key = Path(run_dir), key
        self.folder = self.run_dir / STAGES_DIR

    def run(self, stage: str, compute: Callable[[], tuple[Any, Any]], restore: Callable[[Any], Any] | None = None,
            after: tuple[str, ...] = ()) -> tuple[Any, Any]:
        """``compute()`` -> ``(object, result)`` unless ``stage`` finished already with the same key.

        Args:
            stage: the record's name (``teacher-vgg16``).
            compute: does the work; ``result`` must be JSON-ready (it is stored in the record).
            restore: rebuilds ``object`` from the stored result on resume (e.g. loads a model); None
                gives None.
            after: the stages this one builds on: a rerun of any of them invalidates this record.

        Returns:
            ``(object, result)``, computed or restored.
        """
        key = self.key_for(after)
        stop_if_pressed()  # a Ctrl-C a library swallowed stops here, at the stage boundary
        PROGRESS.start(stage)
        record = self.kept(stage, key)
        if record is not None:
            return (restore(record["result"]) if restore else None), record["result"]
        before, clock = self._snapshot(), time.perf_counter()
        obj, result = compute()
        stop_if_pressed()  # computed while Ctrl-C was pending: maybe cut short, so never recorded as done
        PROGRESS.finish(stage, time.perf_counter() - clock)
        written = [p for p, stat in self._snapshot().items() if before.get(p) != stat]
        return obj, self.save(stage, key, time.perf_counter() - clock, written, result)

    def kept(self, stage: str, key: str) -> dict | None:
        """The record of ``stage`` when it finished earlier with ``key`` (logged and counted as done), else None."""
        record = self.finished(stage, key)
        if record is not None:
            log.info("resume: stage %s finished earlier (%.0fs); kept, not recomputed", stage, record["seconds"])
            PROGRESS.finish(stage, record["seconds"])
        return record

    def save(self, stage: str, key: str, seconds: float, written: list[str], result: Any) -> Any:
        """Write the completion record of ``stage`` (``written``: the files it wrote, relative to the
        run folder); returns ``result`` as the record stores it. The executors call this once the
        stage's work has finished, so a stage killed midway never has a record.

        Example:
            >>> book.save("scratch", book.key_for(()), 12.5, ["Scratch_Student.keras"], row)  # doctest: +SKIP
        """
        # Stored as JSON and read back, so a computed and a restored result are the same values.
        result = json.loads(json.dumps(result, default=_plain))
        write_json(self.folder / f"{stage}.json", {
            "stage": stage, "key": key, "seconds": round(seconds, 2),
            "files": {p: _digest((self.run_dir / p).read_bytes()) for p in sorted(written)}, "result": result})
        return result

    def result(self, stage: str, after: tuple[str, ...] = (), verify_files: bool = True) -> Any:
        """The stored result of ``stage`` when its record is complete and still valid for the records
        of the stages ``after`` it builds on; None otherwise. ``verify_files=False`` trusts the record
        without re-hashing its files (reporting what a stage found, not deciding to skip it)."""
        record = self.finished(stage, self.key_for(after), verify_files)
        return None if record is None else record["result"]

    def seconds(self, stage: str) -> float | None:
        """How long the stage took when it ran (None without a record)."""
        record = self._record(stage)
        return None if record is None else record.get("seconds")

    def finished(self, stage: str, key: str | None = None, verify_files: bool = True) -> dict | None:
        """The stage's record when it is complete and still valid (its files unchanged), else None."""
        record = self._record(stage)
        if record is None:
            return None
        if record.get("key") != (key or self.key):
            log.warning("resume: stage %s was made from other inputs; running it again", stage)
            return None
        for name, digest in record["files"].items() if verify_files else ():
            file = self.run_dir / name
            if not file.is_file() or _digest(file.read_bytes()) != digest:
                log.warning("resume: %s of stage %s is missing or changed; running the stage again", name, stage)
                return None
        return record

    def _record(self, stage: str) -> dict | None:
        """The stage's completion record as written, or None when absent; a record that cannot be read
        (cut short, edited) counts as absent, with a warning, so the stage runs again."""
        path = self.folder / f"{stage}.json"
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("files"), dict) or "result" not in record:
            log.warning("resume: the completion record %s is unreadable; running stage %s again", path, stage)
            return None
        return record

    def key_for(self, after: tuple[str, ...]) -> str:
        """The key of a stage that builds on the stages ``after``: the run's key chained with their records."""
        upstream = [(self.folder / f"{s}.json").read_bytes() if (self.folder / f"{s}.json").is_file() else b""
                    for s in after]
        return _digest(self.key.encode() + b"".join(_digest(u).encode() for u in upstream))

    def _snapshot(self) -> dict[str, tuple[int, int, int]]:
        """``{relative path: (inode, size, mtime)}`` of every file but the records themselves."""
        return {p.relative_to(self.run_dir).as_posix(): (s.st_ino, s.st_size, s.st_mtime_ns)
                for p in self.run_dir.rglob("*") if p.is_file() and STAGES_DIR not in p.relative_to(self.run_dir).parts
                for s in [p.stat()]}


def saved_values(run_dir: Path) -> dict[str, Any]:
    """The configuration keys of the run in ``run_dir`` as saved, older runs' missing keys at their
    legacy values (``config.LEGACY_VALUES``)."""
    from ctdistill.config import LEGACY_VALUES

    saved_file = Path(run_dir) / CONFIG
    if not saved_file.is_file():
        raise ConfigError(f"{run_dir}: not a ctdistill run folder (no config.json); nothing to resume")
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        saved = exc
    if not isinstance(saved, dict):
        raise ConfigError(f"{saved_file}: not a readable run configuration ({saved}); the run's settings are lost, "
                          "so it cannot be resumed or re-quantized: start a new run") from None
    return {**LEGACY_VALUES, **saved}


def resumed_config(run_dir: Path, values: dict[str, Any], moved: dict[str, Any] | None = None):
    """The configuration of the run in ``run_dir``; refused when ``values`` change any key of it.

    Args:
        run_dir: an earlier (interrupted or finished) run folder.
        values: keys given now (flags, a config file); each must equal the run's own value.
        moved: new places of ``config.MOVABLE`` keys (the data or class map moved); not a change.
    """
    from ctdistill.config import Config

    saved = {**saved_values(run_dir), **(moved or {})}
    source = str(Path(run_dir) / CONFIG)
    before = Config.from_mapping(saved, source).to_dict()
    after = Config.from_mapping({**saved, **values}, "the resumed configuration").to_dict()
    changed = [f"{k}: {before[k]!r} -> {after[k]!r}" for k in before if before[k] != after[k]]
    if changed:
        raise ConfigError(f"{run_dir}: refused to resume with a different configuration ({'; '.join(changed)}); "
                          "start a new run with --out instead")
    return Config.from_mapping(saved, source)


def resumed_key(cfg, run_dir: Path, fingerprint: str) -> str:
    """The run key of a continued run: its configuration with the saved places of moved keys."""
    from ctdistill.config import MOVABLE

    saved = saved_values(run_dir)
    return run_key({**cfg.to_dict(), **{k: saved.get(k) for k in MOVABLE}}, fingerprint)


def check_same_data(run_dir: Path, fingerprint: str) -> None:
    """Refuse to resume when the dataset's content changed since the run started."""
    manifest = read_json(run_dir, MANIFEST)
    was = manifest.get("dataset", {}).get("fingerprint")
    if was != fingerprint:
        raise DataError(f"{run_dir}: refused to resume: the dataset changed since the run started "
                        f"(fingerprint {str(was)[:12]} then, {fingerprint[:12]} now)")


def clear_partial_files(run_dir: Path) -> list[Path]:
    """Remove temporary files a killed run left behind (``atomic_path`` names them ``.<stem>.*.tmp*``)."""
    stray = [p for p in Path(run_dir).rglob(".*.tmp*") if p.is_file()]
    for path in stray:
        path.unlink()
    return stray


def _plain(value: Any) -> Any:
    """NumPy scalars as Python numbers (anything else is a bug in a stage's result)."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"stage result holds a {type(value).__name__}, which a completion record cannot store")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
