"""The Ray executor (``--executor ray``, ``ctdistill.run.ray_executor``): same files as a local run, resume
across executors, a worker killed mid-task, Ctrl-C.

CI installs the ``ray`` extra and sets ``CTDISTILL_REQUIRE_RAY=1``: there a missing Ray fails these
tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from test_resume import start, wait_for

from ctdistill.core.errors import ConfigError, CtdistillError
from ctdistill.run.preflight import check_executor

TINY = {"weights": "none", "image_size": 16, "epochs": 2, "patience": 2, "batch_size": 32,
        "synthetic_per_class": (12, 4, 6), "bootstrap_resamples": 0, "quant_modes": ("int8",), "max_quant_drop": -1}


def require_ray():
    if os.environ.get("CTDISTILL_REQUIRE_RAY") == "1":
        import ray  # CI: a missing extra must fail loudly, never skip

        return ray
    return pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'ctdistill[ray]')")


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance of 2 CPUs for this module's runs (the executor uses it, and leaves it running)."""
    ray = require_ray()
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_run(finished_run, ray_local, tmp_path_factory):
    """The shared tiny run (two teachers, their ensemble, a repeated seed) again, on Ray."""
    from ctdistill.run.pipeline import run

    cfg, _ = finished_run
    return run(cfg, tmp_path_factory.mktemp("ray") / "run", executor="ray")


def predictions(run_dir: Path) -> dict[str, bytes]:
    folder = run_dir / "predictions"
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_executor_options_are_checked_before_anything_runs():
    check_executor("local", None)
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        check_executor("local", "auto")
    with pytest.raises(ConfigError, match="choose from local, ray"):
        check_executor("dask", None)


def test_the_cli_refuses_a_ray_address_without_the_ray_executor(capsys):
    from ctdistill.cli.main import main

    assert main(["run", "--ray-address", "auto", "--weights", "none"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


def test_the_task_graph_follows_the_stages_and_their_upstream():
    """Every unit belongs to a planned stage and needs only planned stages; the seeds stage is one unit
    per seed's student (or one empty unit when the run's seed is the only one), seeds-int8 one per
    seed's int8 conversion."""
    from ctdistill.config import Config
    from ctdistill.run.plan import planned_stages
    from ctdistill.run.ray_executor import WORK, units

    cfg = Config(teachers=("vgg16", "resnet50"), ensemble="mean", seeds=(0, 1, 2))
    names = ["vgg16", "resnet50", "ensemble"]
    graph = units(cfg, names)
    assert {u.stage for u in graph} == set(planned_stages(cfg)) and {u.kind for u in graph} <= set(WORK)
    assert all(set(u.needs) <= set(planned_stages(cfg)) for u in graph)
    by_name = {u.name: u for u in graph}
    assert by_name["teacher-ensemble"].needs == ("teacher-vgg16", "teacher-resnet50")
    assert by_name["seed2-distill-ensemble"].needs == ("teacher-ensemble",) and by_name["seed2-scratch"].needs == ()
    assert sum(u.stage == "seeds" for u in graph) == 2 * (1 + len(names))
    int8 = [u for u in graph if u.stage == "seeds-int8"]  # one conversion a task, after every seed's student
    assert len(int8) == 2 * len(names) and {u.needs for u in int8} == {("seeds",)} and by_name["seed1-int8-vgg16"]
    lone = units(Config(teachers=("vgg16",), seeds=(0,), quant_modes=()), ["vgg16"])
    assert [(u.name, u.kind) for u in lone if u.stage == "seeds"] == [("seeds", "nothing")]


def test_the_flight_board_names_the_tasks_in_flight(caplog, monkeypatch):
    """Without a terminal: one line per start and finish, with the tasks done and the ones in flight."""
    from ctdistill.core.progress import FlightBoard

    monkeypatch.setenv("CTDISTILL_PROGRESS", "plain")
    board = FlightBoard(4)
    with caplog.at_level("INFO", logger="ctdistill"):
        board.kept(1)
        board.start("teacher-vgg16")
        board.start("scratch")
        board.finish("scratch", 12.0, "host/abc123:42")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1] == "[tasks] started scratch; 1/4 done; in flight: teacher-vgg16 0s, scratch 0s"
    assert lines[2] == "[tasks] scratch finished in 12s on host/abc123:42; 2/4 done; in flight: teacher-vgg16 0s"


@pytest.mark.slow
def test_a_ray_run_writes_the_same_predictions_and_records_as_a_local_run(finished_run, ray_run):
    _, local = finished_run
    assert predictions(ray_run) == predictions(local)  # byte for byte, every model and seed, metrics too
    local_stages = sorted(p.name for p in (local / "stages").glob("*.json"))
    assert sorted(p.name for p in (ray_run / "stages").glob("*.json")) == local_stages
    for name in local_stages:  # the same files in every record: the worker's list is the local folder listing
        mine, theirs = (json.loads((d / "stages" / name).read_text()) for d in (ray_run, local))
        assert sorted(mine["files"]) == sorted(theirs["files"]), name
    assert (ray_run / "report.html").is_file()


@pytest.mark.slow
def test_a_local_run_resumes_on_ray_and_a_ray_run_resumes_locally(finished_run, ray_local, tmp_path):
    """Each executor keeps the other's finished stages and redoes the rest with the same bytes: a local
    run resumed on Ray, whose Ray-made stages are then resumed locally."""
    from ctdistill.run.pipeline import run

    cfg, local = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(local, run_dir)
    for executor, redo in (("ray", ("distill-tiny_b", "seeds", "seeds-int8")), ("local", ("seeds", "seeds-int8"))):
        for stage in redo:  # as if killed before these finished
            (run_dir / "stages" / f"{stage}.json").unlink()
        kept = {n: (run_dir / n).stat().st_mtime_ns for n in ("tiny_Teacher.keras", "tiny_b_Teacher.keras",
                                                              "Scratch_Student.keras", "tiny_b_Student.keras")}
        run(cfg, run_dir, resume=True, executor=executor)
        if executor == "ray":  # the kept stages' files untouched; the redone distillation rewritten
            assert kept.pop("tiny_b_Student.keras") != (run_dir / "tiny_b_Student.keras").stat().st_mtime_ns
        assert {n: (run_dir / n).stat().st_mtime_ns for n in kept} == kept, executor  # not redone
        assert (run_dir / "stages" / "seeds.json").is_file()
        assert predictions(run_dir) == predictions(local), executor


def kill_when_running(task: str, raylet_pid: int, killed: list[int], timeout: float = 300) -> threading.Thread:
    """SIGKILL the worker process of our Ray instance that runs ``task`` (Ray titles it ``ray::<task>``),
    once, from a thread; its pid goes to ``killed``."""
    def hunt():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not killed:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                if title == f"ray::{task}" and parent == raylet_pid:
                    time.sleep(1.0)  # into the task's work, not its start
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return thread


def raylet_pid(ray) -> int:
    from ray._private import ray_constants  # Ray's own tests find the raylet so; no public API gives it

    node = ray._private.worker._global_node
    return node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid


@pytest.mark.slow
def test_a_killed_worker_is_reported_without_retries_and_retried_with_them(ray_local, tiny_teacher, tmp_path,
                                                                           monkeypatch):
    from ctdistill.config import Config
    from ctdistill.run import ray_executor as scale
    from ctdistill.run.pipeline import run

    cfg, run_dir = Config(teachers=(tiny_teacher,), **TINY), tmp_path / "run"
    monkeypatch.setattr(scale, "RETRIES", 0)
    killed: list[int] = []
    hunter = kill_when_running(f"teacher-{tiny_teacher}", raylet_pid(ray_local), killed)
    with pytest.raises(CtdistillError, match=f"task teacher-{tiny_teacher} failed on Ray after 1 tries"):
        run(cfg, run_dir, executor="ray")
    hunter.join()
    assert killed and not (run_dir / "stages" / f"teacher-{tiny_teacher}.json").exists()
    assert (run_dir / "stages" / "scratch.json").is_file()  # what finished is kept
    scratch = (run_dir / "Scratch_Student.keras").stat().st_mtime_ns

    monkeypatch.setattr(scale, "RETRIES", 2)
    killed.clear()
    hunter = kill_when_running(f"distill-{tiny_teacher}", raylet_pid(ray_local), killed)
    run(cfg, run_dir, resume=True, executor="ray")  # the killed distillation runs again and the run finishes
    hunter.join()
    assert killed, "no worker was killed: the test proves nothing"
    assert (run_dir / "Scratch_Student.keras").stat().st_mtime_ns == scratch
    assert {p.stem for p in (run_dir / "stages").glob("*.json")} == {
        "scratch", f"teacher-{tiny_teacher}", f"distill-{tiny_teacher}", f"quantize-{tiny_teacher}"}
    assert (run_dir / "summary.csv").is_file()


@pytest.mark.slow
def test_ctrl_c_stops_the_ray_work_and_the_run_resumes_locally(tmp_path):
    """The CLI with its own Ray instance: Ctrl-C exits 130 with the resume hint; a local resume finishes."""
    require_ray()
    config = tmp_path / "tiny.toml"
    config.write_text("\n".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
                                for k, v in {**TINY, "teachers": ("tiny",)}.items()))
    run_dir = tmp_path / "run"
    proc = start("run", "--config", config, "--out", run_dir, "--executor", "ray")
    wait_for(run_dir / "stages" / "scratch.json", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert f"Resume with: ctdistill run --resume {run_dir}" in err.strip().splitlines()[-1]
    done = start("run", "--resume", run_dir)
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err[-3000:]
    assert "stage scratch finished earlier" in err and (run_dir / "summary.csv").is_file()

