"""Scale-out on Ray (issue #21): local against ``--executor ray``, a simulated cluster, and the plan.

    python bench/ray_scaling.py compare --repeats 2 --out bench-ray      # local vs ray, alternated
    python bench/ray_scaling.py cluster --out bench-ray                  # head + 2 one-CPU nodes, a worker killed
    python bench/ray_scaling.py plan --timings bench-ray/local-0.json    # the full run on N workers, on paper

Every run is the same two-teacher job with ``--seeds 0,1,2`` (``RUN`` below: VGG16 and ResNet50 from
scratch at 32 px on the built-in phantoms, 3 teacher / 6 student epochs), each in a fresh process.
``compare`` and ``cluster`` check that every run's ``predictions/`` is byte-identical to the first
local run's. The driver's view of each task (submitted -> returned) is recorded beside each run
(``<run>.json``) to measure the overhead per task: driver-side time minus the task's own compute time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import HERE, use_checkout

RUN = {"teachers": ("vgg16", "resnet50"), "weights": "none", "image_size": 32, "teacher_epochs": 3, "epochs": 6,
       "patience": 50, "seeds": (0, 1, 2), "bootstrap_resamples": 100}


def one(executor: str, out: Path, address: str | None) -> None:
    """One run in this process; writes ``<out>.json``: wall time, the records' seconds, the driver's task times."""
    use_checkout()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    from ctdistill.config import Config
    from ctdistill.core import progress
    from ctdistill.run.pipeline import run

    seen: dict[str, dict] = {}
    start, finish = progress.FlightBoard.start, progress.FlightBoard.finish

    def started(board, name):
        seen[name] = {"submitted": time.perf_counter()}
        start(board, name)

    def finished(board, name, seconds, where):
        seen[name].update(returned=time.perf_counter(), compute=seconds, where=where)
        finish(board, name, seconds, where)

    progress.FlightBoard.start, progress.FlightBoard.finish = started, finished
    clock = time.perf_counter()
    run(Config(**RUN), out, executor=executor, ray_address=address)
    wall = time.perf_counter() - clock
    records = {p.stem: json.loads(p.read_text())["seconds"] for p in (out / "stages").glob("*.json")}
    tasks = {n: {"driver_s": t["returned"] - t["submitted"], "compute_s": t["compute"], "where": t["where"]}
             for n, t in seen.items()}
    Path(f"{out}.json").write_text(json.dumps({"executor": executor, "wall_s": wall, "stages": records,
                                               "tasks": tasks}, indent=1))


def spawn(executor: str, out: Path, address: str | None = None, **popen) -> subprocess.Popen:
    args = [sys.executable, str(HERE / "ray_scaling.py"), "one", executor, str(out)] + (
        ["--address", address] if address else [])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{out}.log", "w") as log_file:  # the run's log lines, beside it
        return subprocess.Popen(args, env={**os.environ, "CTDISTILL_PROGRESS": "plain", "TF_CPP_MIN_LOG_LEVEL": "2"},
                                stdout=log_file, stderr=subprocess.STDOUT, **popen)


def predictions_digest(run_dir: Path) -> str:
    folder, digest = run_dir / "predictions", hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def overhead(timing: dict) -> float:
    """Median over tasks of the driver's submitted->returned time minus the task's compute time (s)."""
    return statistics.median(t["driver_s"] - t["compute_s"] for t in timing["tasks"].values())


def compare(out: Path, repeats: int) -> None:
    rows = []
    for r in range(repeats):
        for executor in ("local", "ray"):  # alternated: drift on the machine hits both alike
            run_dir = out / f"{executor}-{r}"
            assert spawn(executor, run_dir).wait() == 0, run_dir
            timing = json.loads(Path(f"{run_dir}.json").read_text())
            rows.append((executor, r, timing, predictions_digest(run_dir)))
    reference = rows[0][3]
    print("| run | executor | wall s | sum of stage records s | tasks | median overhead per task s | "
          "predictions = local-0 |\n|---|---|---:|---:|---:|---:|---|")
    for executor, r, timing, digest in rows:
        tasks = len(timing["tasks"]) or len(timing["stages"])
        over = f"{overhead(timing):.2f}" if timing["tasks"] else "–"
        print(f"| {r} | {executor} | {timing['wall_s']:.1f} | {sum(timing['stages'].values()):.1f} | {tasks} | "
              f"{over} | {'yes' if digest == reference else 'NO'} |")
    walls = {e: statistics.median(t["wall_s"] for x, _, t, _ in rows if x == e) for e in ("local", "ray")}
    print(f"median wall: local {walls['local']:.1f} s, ray {walls['ray']:.1f} s; ray/local = "
          f"{walls['ray'] / walls['local']:.2f}; identical={all(d == reference for *_, d in rows)}")


def cluster(out: Path, kill: str, reference: Path | None) -> None:
    """A head with no CPU and two one-CPU worker nodes on this machine (``ray.cluster_utils.Cluster``,
    Ray's own multi-node testing tool); the run joins it; the worker running ``kill`` gets SIGKILL."""
    from ray.cluster_utils import Cluster

    ray_cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        ray_cluster.add_node(num_cpus=1)
    ray_cluster.wait_for_nodes()
    run_dir, killed = out / "cluster", []
    proc = spawn("ray", run_dir, ray_cluster.address)
    while proc.poll() is None and not killed:  # the worker process Ray titles ray::<task>
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title == f"ray::{kill}":
                time.sleep(3)  # mid-task
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                print(f"killed pid {pid} running {kill} at {time.strftime('%H:%M:%S')}", flush=True)
                break
        time.sleep(0.1)
    rc = proc.wait()
    ray_cluster.shutdown()
    timing = json.loads(Path(f"{run_dir}.json").read_text())
    nodes = sorted({t["where"].split("/")[1].split(":")[0] for t in timing["tasks"].values()})
    print("| task | node:pid | driver s | compute s |\n|---|---|---:|---:|")
    for name, t in timing["tasks"].items():
        print(f"| {name} | {t['where'].split('/')[1]} | {t['driver_s']:.1f} | {t['compute_s']:.1f} |")
    same = reference is not None and predictions_digest(run_dir) == predictions_digest(reference)
    print(f"exit {rc}; wall {timing['wall_s']:.1f} s; nodes used {len(nodes)} ({', '.join(nodes)}); killed "
          f"{killed or 'nothing'}; predictions = {reference}: {same}")


# Each kind's stage, as the plan counts it; distillations of every seed cost what the run's own does.
def plan(timings: Path, workers: list[int], overhead_s: float, startup_s: float) -> None:
    """Expected wall time of the full seven-teacher, three-seed run on N one-task workers.

    Per-stage times come from a measured run's records (``timings``): each of the seven teachers and
    its distillation takes the mean of the measured teachers' (and distillations'), each scratch
    student the measured scratch stage, each quantization the mean measured one, and every task pays
    ``overhead_s`` (the measured median overhead per task); the run pays ``startup_s`` once (new workers
    import TensorFlow side by side before their first task). Tasks start in the executor's order
    (plan order) as soon as their inputs are done and a worker is free.
    """
    stages = json.loads(timings.read_text())["stages"]
    mean = lambda kind: statistics.mean(v for k, v in stages.items() if k.startswith(f"{kind}-"))  # noqa: E731
    teacher, distill, quant, scratch = mean("teacher"), mean("distill"), mean("quantize"), stages["scratch"]
    int8 = stages.get("seeds-int8", quant) / 4  # one conversion: the measured stage holds 2 teachers x 2 extra seeds
    names = [f"t{i}" for i in range(7)]
    tasks = [("scratch", scratch, ())]
    for n in names:
        tasks += [(f"teacher-{n}", teacher, ()), (f"distill-{n}", distill, (f"teacher-{n}",))]
    for seed in (1, 2):
        tasks += [(f"seed{seed}-scratch", scratch, ())]
        tasks += [(f"seed{seed}-distill-{n}", distill, (f"teacher-{n}",)) for n in names]
    tasks += [(f"quantize-{n}", quant, (f"distill-{n}",)) for n in names]
    seed_units = tuple(t[0] for t in tasks if t[0].startswith("seed"))  # seeds-int8 waits for the seeds record
    tasks += [(f"seed{seed}-int8-{n}", int8, seed_units) for seed in (1, 2) for n in names]
    total = sum(d for _, d, _ in tasks)
    print(f"per stage (s): teacher {teacher:.1f}, distill {distill:.1f}, scratch {scratch:.1f}, quantize "
          f"{quant:.1f}, one seed's int8 conversion {int8:.1f}; {len(tasks)} tasks, {total:.0f} s of work; overhead "
          f"{overhead_s:.2f} s per task, {startup_s:.1f} s to start the workers")
    print("| workers | expected wall s | speed-up vs 1 | efficiency |\n|---:|---:|---:|---:|")
    one_worker = None
    for n in workers:
        wall = simulate(tasks, n, overhead_s) + startup_s
        one_worker = one_worker or wall
        print(f"| {n} | {wall:.0f} | {one_worker / wall:.2f} | {one_worker / wall / n:.0%} |")


def simulate(tasks: list[tuple[str, float, tuple]], workers: int, overhead_s: float) -> float:
    """The executor's schedule, as events: a task is submitted once its inputs have finished, and a free
    worker takes the earliest submitted one (Ray's queue); returns when the last task ends."""
    finished: dict[str, float] = {}
    pending, queue, running, now = list(tasks), [], [], 0.0
    while pending or queue or running:
        ready = [t for t in pending if all(d in finished for d in t[2])]
        pending = [t for t in pending if t not in ready]
        queue += ready
        while queue and len(running) < workers:
            name, seconds, _ = queue.pop(0)
            running.append((now + seconds + overhead_s, name))
        running.sort()
        now, name = running.pop(0)
        finished[name] = now
    return now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("one")
    p.add_argument("executor")
    p.add_argument("out", type=Path)
    p.add_argument("--address")
    p = sub.add_parser("compare")
    p.add_argument("--out", type=Path, default=Path("bench-ray"))
    p.add_argument("--repeats", type=int, default=2)
    p = sub.add_parser("cluster")
    p.add_argument("--out", type=Path, default=Path("bench-ray"))
    p.add_argument("--kill", default="distill-resnet50", help="the task whose worker is killed")
    p.add_argument("--reference", type=Path, help="a local run of the same job (predictions compared)")
    p = sub.add_parser("plan")
    p.add_argument("--timings", type=Path, required=True, help="<run>.json of a measured run (compare's local-0)")
    p.add_argument("--workers", default="1,2,4,7,8,12,16,24,32")
    p.add_argument("--overhead", type=float, default=0.0, help="seconds per task (compare's median overhead)")
    p.add_argument("--startup", type=float, default=0.0, help="seconds before the first tasks start (worker start)")
    args = parser.parse_args()
    if args.command == "one":
        one(args.executor, args.out, args.address)
    elif args.command == "compare":
        compare(args.out, args.repeats)
    elif args.command == "cluster":
        cluster(args.out, args.kill, args.reference)
    else:
        plan(args.timings, [int(n) for n in args.workers.split(",")], args.overhead, args.startup)


if __name__ == "__main__":
    main()
