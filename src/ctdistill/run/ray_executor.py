"""Run the stages of a run as tasks on a Ray cluster (``ctdistill run --executor ray``).

The unit of work is what the local executor does inside one completion record (``book``): a
teacher, its distillation, the scratch baseline, a quantization; the ``seeds`` record is split
into one unit per seed's scratch student and per (teacher, seed) distillation, ``seeds-int8`` into
one per (teacher, seed) int8 conversion, and each record is written when all its units have
finished. A unit waits for the stages ``plan.upstream`` names.

The driver (this process) decides what runs: a stage whose record is valid is kept, as locally;
it puts the dataset into Ray's object store once, submits each unit as a task as soon as the
stages it builds on are recorded, and writes each record itself when the task returns, so a task
killed midway never leaves one. Workers write their files into the run folder through the
run-folder code (atomic writes, the same names): on a real cluster the run folder must be on
storage every node mounts at the same path.

Byte-identical to a local run: every unit seeds itself (``steps.seed_everything``), the workers
use the driver's Keras backend, and TensorFlow's thread pools are pinned to the driver's CPU count
(TensorFlow's default there; other counts change the predictions in the 7th digit, BENCHMARKS.md).

Example:
    >>> run(Config(teachers=("vgg16", "resnet50"), seeds=(0, 1, 2)), "runs/x", executor="ray")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from pathlib import Path

from ctdistill.config import Config
from ctdistill.core import caches
from ctdistill.core.errors import CtdistillError
from ctdistill.core.progress import PROGRESS, FlightBoard
from ctdistill.core.quiet import LOG_FORMAT, quiet_library_logs
from ctdistill.data import Dataset
from ctdistill.models.inference import load_model
from ctdistill.run.folder import watch_writes
from ctdistill.run.plan import planned_stages, upstream
from ctdistill.run.repeats import extra_seeds, quantize_repeats, repeat_distill, repeat_scratch
from ctdistill.run.steps import distill_step, ensemble_step, quantize_step, scratch_stage, seed_everything, teacher_step

log = logging.getLogger("ctdistill")
RETRIES = 2  # a task whose worker dies (kill -9, a lost node) runs again up to this many times, then is reported
# CPUs each kind of task asks Ray for (TensorFlow's own thread count is pinned apart: worker_setup); training
# also asks for a GPU where the cluster has one.
RESOURCES = {"nothing": 1, "scratch": 1, "teacher": 1, "ensemble": 1, "distill": 1, "quantize": 1, "seed-scratch": 1,
             "seed-distill": 1, "seed-int8": 1}
SPLIT_STAGES = ("seeds", "seeds-int8")  # one record, one task per seed's model: the record holds the seeds
TRAINS = {"scratch", "teacher", "ensemble", "distill", "seed-scratch", "seed-distill"}


@dataclasses.dataclass(frozen=True)
class Unit:
    """One task: ``name`` (shown and given to Ray), the ``stage`` whose record it belongs to, its
    ``kind`` (a key of ``WORK``), its teacher and seed, and the stages it ``needs`` recorded first."""

    name: str
    stage: str
    kind: str
    teacher: str = ""
    seed: int | None = None
    needs: tuple[str, ...] = ()


def ray_stages(cfg: Config, data: Dataset, run_dir: Path, book, names: list[str], address: str | None) -> None:
    """Every stage of the run as Ray tasks, each record written here when its task returns.

    Args:
        cfg, data, run_dir: the run (``run_dir`` must be reachable at the same path on every node).
        book: the run's completion records (``resume.Stages``); valid ones are kept, as locally.
        names: the teachers whose students are distilled (with ``ensemble`` when one is built).
        address: ``auto``, ``ray://HOST:PORT`` or a head's ``HOST:PORT``; None starts a local Ray
            instance (stopped at the end), unless this process is connected to one already.
    """
    import ray

    connected_here = not ray.is_initialized()  # else a caller (a test, a notebook) holds the connection
    if connected_here:
        # Each new worker imports Keras first with TensorFlow's start-up banner hidden, as the CLI does.
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, configure_logging=False,
                 runtime_env={"worker_process_setup_hook": "ctdistill.core.quiet.import_backend_quietly"})
    flight = Flight(cfg, data, run_dir.resolve(), book, names)
    try:
        flight.drive()
    except KeyboardInterrupt:  # Ctrl-C: stop the cluster's work too, keep what finished
        for ref in flight.running:
            ray.cancel(ref, force=True)
        raise
    finally:
        flight.board.close()
        if connected_here:  # stops a local instance started here; only disconnects from a cluster
            ray.shutdown()


class Flight:
    """The driver's loop: submit the units whose inputs are recorded, record the ones that return."""

    def __init__(self, cfg: Config, data: Dataset, run_dir: Path, book, names: list[str]):
        import keras
        import ray

        self.cfg, self.data, self.run_dir, self.book, self.names = cfg, data, run_dir, book, names
        self.todo = units(cfg, names)
        self.results: dict[str, object] = {}  # recorded stages -> their results
        self.parts: dict[str, list[dict]] = {}  # a stage's finished units' returns, until all are back
        self.running: dict[object, Unit] = {}
        self.failed: list[tuple[Unit, BaseException]] = []
        self.setup = worker_setup(cfg)
        env = {"KERAS_BACKEND": keras.backend.backend(), "CTDISTILL_PROGRESS": "plain",
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self.task = ray.remote(work)
        self.needs = {kind: {"num_cpus": cpus, "num_gpus": gpus if kind in TRAINS else 0, "max_retries": RETRIES,
                             "runtime_env": {"env_vars": env}} for kind, cpus in RESOURCES.items()}
        self.board = FlightBoard(len(self.todo))

    def drive(self) -> None:
        import ray

        self.keep_finished()
        data = ray.put(self.data)  # once: every task reads the arrays from the object store
        while self.todo or self.running:
            if not self.failed:
                self.submit_ready(data)
            if not self.running:  # nothing can start: a task failed (reported below), or a bug in the graph
                if not self.failed:
                    raise RuntimeError(f"no task can start: {', '.join(u.name for u in self.todo)}")
                break
            done, _ = ray.wait(list(self.running), num_returns=1, timeout=1.0)
            for ref in done:
                self.collect(ref)
            self.board.refresh()
        if self.failed:
            unit, error = self.failed[0]
            raise _reported(unit, error, self.run_dir)

    def keep_finished(self) -> None:
        """In plan order, keep every stage whose record is valid and whose inputs were all kept."""
        for stage in planned_stages(self.cfg):
            after = upstream(stage, self.cfg, self.names)
            record = self.book.kept(stage, self.book.key_for(after)) if all(s in self.results for s in after) else None
            if record is not None:
                self.results[stage] = record["result"]
                mine = [u for u in self.todo if u.stage == stage]
                self.todo = [u for u in self.todo if u.stage != stage]
                self.board.kept(len(mine))

    def submit_ready(self, data) -> None:
        """Submit ready units in plan order, as many as the cluster has CPUs for: the tasks in flight are
        the ones running (the display's times are theirs), and a node that joins adds room at once."""
        import ray

        room = int(ray.cluster_resources().get("CPU", 0)) // RESOURCES["teacher"] - len(self.running)
        # With nothing running, one task waits in Ray's queue for the first node (a cluster still starting).
        room = max(room, 0 if self.running else 1)
        for unit in [u for u in self.todo if all(s in self.results for s in u.needs)][:room]:
            self.todo.remove(unit)
            inputs = {**{s: self.results[s] for s in unit.needs}, "names": self.names}
            task = self.task.options(**self.needs[unit.kind], name=unit.name)
            ref = task.remote(unit, self.cfg, data, self.run_dir, inputs, self.setup)
            self.running[ref] = unit
            self.board.start(unit.name)

    def collect(self, ref) -> None:
        """Record a returned task (its stage's record once all of the stage's units are back)."""
        import ray

        unit = self.running.pop(ref)
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as error:
            self.failed.append((unit, error))
            self.board.failed(unit.name)
            return
        self.board.finish(unit.name, out["seconds"], out["where"])
        self.parts.setdefault(unit.stage, []).append(out)
        if any(u.stage == unit.stage for u in [*self.todo, *self.running.values()]):
            return
        parts, after = self.parts.pop(unit.stage), upstream(unit.stage, self.cfg, self.names)
        # The seeds stages' records hold what the local ones do: the repeated seeds, and all units' files.
        result = extra_seeds(self.cfg) if unit.stage in SPLIT_STAGES else parts[0]["result"]
        seconds = sum(p["seconds"] for p in parts)
        PROGRESS.finish(unit.stage, seconds)
        self.results[unit.stage] = self.book.save(unit.stage, self.book.key_for(after), seconds,
                                                  [f for p in parts for f in p["files"]], result)


def _reported(unit: Unit, error: BaseException, run_dir: Path) -> BaseException:
    """The error a failed task ends the run with: a bug or a user error raised by the work itself as it
    is; a dead worker (after ``RETRIES`` retries) or a lost node as one line naming the task."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, Exception):
        return error.cause
    return CtdistillError(f"task {unit.name} failed on Ray after {RETRIES + 1} tries ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else 'no message'}); finished stages are "
                          f"kept in {run_dir}. Resume with: ctdistill run --resume {run_dir} --executor ray")


def units(cfg: Config, names: list[str]) -> list[Unit]:
    """The tasks of a run of ``cfg``, in the local executor's order; ``names``: the teachers whose
    students are distilled (with ``ensemble`` when one is built).

    Example:
        >>> [u.name for u in units(Config(teachers=("vgg16",), seeds=(0, 1), quant_modes=()), ["vgg16"])]
        ['scratch', 'teacher-vgg16', 'distill-vgg16', 'seed1-scratch', 'seed1-distill-vgg16']
    """
    out = []
    for stage in planned_stages(cfg):
        kind, _, name = stage.partition("-")
        if stage == "seeds" and not extra_seeds(cfg):  # --seeds with the run's seed only: an empty record
            out.append(Unit(stage, stage, "nothing", needs=upstream(stage, cfg, names)))
        elif stage == "seeds":
            for seed in extra_seeds(cfg):
                out.append(Unit(f"seed{seed}-scratch", stage, "seed-scratch", seed=seed))
                out += [Unit(f"seed{seed}-distill-{n}", stage, "seed-distill", n, seed, (f"teacher-{n}",))
                        for n in names]
        elif stage == "seeds-int8":  # one conversion a task: 14 of them were one 49 s task on the critical path
            out += [Unit(f"seed{seed}-int8-{n}", stage, "seed-int8", n, seed, upstream(stage, cfg, names))
                    for seed in extra_seeds(cfg) for n in names] or [
                Unit(stage, stage, "nothing", needs=upstream(stage, cfg, names))]
        else:
            kind = "ensemble" if stage == "teacher-ensemble" else kind
            out.append(Unit(stage, stage, kind, name, needs=upstream(stage, cfg, names)))
    return out


def _teacher(run_dir: Path, inputs: dict, name: str):
    return load_model(run_dir / inputs[f"teacher-{name}"]["file"])


# What a worker does for each kind of unit: (unit, cfg, data, run_dir, inputs: the needed stages' results)
# -> the result the record stores. The local executor's calls, with models read back from the run folder.
WORK = {
    "scratch": lambda u, cfg, data, run_dir, inputs: scratch_stage(data, cfg, run_dir),
    "teacher": lambda u, cfg, data, run_dir, inputs: teacher_step(u.teacher, data, cfg, run_dir)[1],
    "ensemble": lambda u, cfg, data, run_dir, inputs: ensemble_step(
        {n: _teacher(run_dir, inputs, n) for n in cfg.teachers}, [inputs[f"teacher-{n}"] for n in cfg.teachers],
        data, cfg, run_dir)[1],
    "distill": lambda u, cfg, data, run_dir, inputs: distill_step(
        u.teacher, _teacher(run_dir, inputs, u.teacher), data, cfg, run_dir)[1],
    "quantize": lambda u, cfg, data, run_dir, inputs: quantize_step(
        u.teacher, load_model(run_dir / inputs[f"distill-{u.teacher}"]["file"]), inputs[f"distill-{u.teacher}"],
        data, cfg, run_dir),
    "nothing": lambda u, cfg, data, run_dir, inputs: None,
    "seed-scratch": lambda u, cfg, data, run_dir, inputs: repeat_scratch(cfg, data, run_dir, u.seed),
    "seed-distill": lambda u, cfg, data, run_dir, inputs: repeat_distill(
        cfg, data, u.teacher, _teacher(run_dir, inputs, u.teacher), run_dir, u.seed),
    "seed-int8": lambda u, cfg, data, run_dir, inputs: quantize_repeats(cfg, data, run_dir, [u.seed], [u.teacher]),
}


def work(unit: Unit, cfg: Config, data: Dataset, run_dir: Path, inputs: dict, setup: dict) -> dict:
    """A worker's task: set the process up as the driver is (``setup``), do ``unit``'s work, and return
    its result, the files it wrote (relative to the run folder), its seconds and where it ran."""
    prepare_worker(setup)
    seed_everything(cfg)  # op determinism on, as the local run switches it on once at its start
    clock = time.perf_counter()
    with watch_writes() as written:
        result = WORK[unit.kind](unit, cfg, data, run_dir, inputs)
    # The run folder's files only (a quantization also writes temporary models elsewhere), as the local record.
    files = sorted(p.relative_to(run_dir).as_posix() for p in written if p.is_relative_to(run_dir))
    return {"result": result, "files": files,
            "seconds": time.perf_counter() - clock, "where": where()}


def where() -> str:
    """``host/node:pid`` of this worker (nodes share a host name when simulated on one machine)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:6]}:{os.getpid()}"


def worker_setup(cfg: Config) -> dict:
    """What a worker must share with the driver: the log level, TensorFlow's thread count (the
    predictions depend on it) and teachers registered here beyond the built-in ones (plug-ins, tests)."""
    from ctdistill.core.choices import TEACHERS as BUILT_IN
    from ctdistill.models.teachers import TEACHERS

    return {"level": log.getEffectiveLevel(), "threads": len(os.sched_getaffinity(0)),
            "teachers": {n: spec for n, spec in TEACHERS.items() if n not in BUILT_IN},
            "caches": {k: os.environ[k] for k in (caches.CACHE_ENV, caches.SWITCH_ENV) if k in os.environ}}


def prepare_worker(setup: dict) -> None:
    """Configure a worker process once: logging, pinned TensorFlow threads, the driver's teachers."""
    import keras

    from ctdistill.models.teachers import TEACHERS

    if not logging.getLogger().handlers:  # the CLI's format; Ray forwards the lines to the driver
        logging.basicConfig(level=setup["level"], **LOG_FORMAT)
        if setup["level"] > logging.DEBUG:
            quiet_library_logs()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:  # possible only before TensorFlow's first op in this process (a reused worker has them set)
            tf.config.threading.set_intra_op_parallelism_threads(setup["threads"])
            tf.config.threading.set_inter_op_parallelism_threads(setup["threads"])
        except RuntimeError:
            pass
    for name, spec in setup["teachers"].items():
        TEACHERS.setdefault(name, spec)
    os.environ.update(setup["caches"])  # --cache-dir / --no-compile-cache, as the driver was told
    caches.enable_compile_cache(keras.backend.backend())
