"""Send a finished run to an experiment tracker (``ctdistill run --track mlflow``).

The run folder stays the source of truth: a tracker receives a copy of what the run wrote (its
configuration, every model's metrics, the stage timings, the report and the deployable file) and
nothing is read back from it. Trackers are table entries (:data:`TRACKERS`), each a function of the
run folder; MLflow is an extra (``pip install 'ctdistill[mlflow]'``), imported only when asked for.

Example:
    >>> sorted(TRACKERS)
    ['mlflow']
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from ctdistill.core.errors import ConfigError
from ctdistill.run import folder as rf

log = logging.getLogger("ctdistill")

# The columns of metrics.csv that become tracker metrics (the intervals as <metric>_lo / _hi).
TRACKED_METRICS = ("accuracy", "balanced_accuracy", "f1", "auc", "ece", "accuracy_dedup", "f1_dedup", "size_mb",
                   "accuracy_lo", "accuracy_hi", "f1_lo", "f1_hi", "auc_lo", "auc_hi")
# The run's files a tracker keeps as artifacts, besides the deployable model and its card.
TRACKED_FILES = (rf.REPORT_HTML, rf.REPORT_MD, rf.SUMMARY, rf.METRICS_TABLE, "per_class.csv", rf.VERDICT,
                 rf.MANIFEST, rf.TIMINGS, rf.CONFIG)
# Which stage made a model, from metrics.csv's kind and teacher (plan.planned_stages names the stages).
STAGE_OF_KIND = {"scratch": lambda teacher: "scratch", "teacher": lambda teacher: f"teacher-{teacher}",
                 "distilled": lambda teacher: f"distill-{teacher}", "quantized": lambda teacher: f"quantize-{teacher}"}


def stage_records(run_dir: Path) -> dict[str, dict]:
    """Each stage of a finished run: its wall time and the metrics of the models it made.

    Returns:
        ``{stage: {"seconds": float | None, "metrics": {name: value}}}``; a quantization stage, which
        makes one model per mode, prefixes each metric with its mode (``int8.accuracy``).
    """
    timings = rf.read_json(run_dir, rf.TIMINGS, {})
    stages: dict[str, dict] = {}
    if "scratch_s" in timings:
        stages["scratch"] = {"seconds": timings["scratch_s"], "metrics": {}}
    for teacher, parts in (timings.get("teachers") or {}).items():
        for kind in ("teacher", "distill", "quantize"):
            if f"{kind}_s" in parts:
                stages[f"{kind}-{teacher}"] = {"seconds": parts[f"{kind}_s"], "metrics": {}}
    metrics = pd.read_csv(run_dir / rf.METRICS_TABLE)
    for row in metrics.to_dict("records"):
        teacher = row["teacher"] if isinstance(row["teacher"], str) else ""
        stage = STAGE_OF_KIND[row["kind"]](teacher) if row["kind"] in STAGE_OF_KIND else row["kind"]
        prefix = f"{row['mode']}." if row["kind"] == "quantized" else ""
        record = stages.setdefault(stage, {"seconds": None, "metrics": {}})
        record["metrics"].update({prefix + k: float(row[k]) for k in TRACKED_METRICS
                                  if k in row and pd.notna(row[k])})
    return stages


def flat_params(config: dict) -> dict[str, str]:
    """A run's configuration as tracker parameters: one string per key (lists comma-joined)."""
    return {k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in sorted(config.items())}


def track_mlflow(run_dir: Path) -> str:
    """Log a finished run to MLflow: a parent run (configuration as params, the deployed model's headline
    metrics, total time, the run's files and deployable model as artifacts) with one nested run per
    stage (its wall time and the metrics of the models it made).

    The store is ``MLFLOW_TRACKING_URI`` when set, else MLflow's own default (``sqlite:///mlflow.db``
    with artifacts under ``./mlruns``, in the working directory); the experiment is
    ``MLFLOW_EXPERIMENT_NAME`` or ``ctdistill``.

    Args:
        run_dir: a finished run folder.

    Returns:
        The MLflow run id of the parent run.
    """
    try:
        import mlflow
    except ImportError:
        raise ConfigError("--track mlflow needs MLflow: pip install 'ctdistill[mlflow]'") from None
    run_dir = Path(run_dir)
    config = json.loads((run_dir / rf.CONFIG).read_text(encoding="utf-8"))
    found = rf.read_json(run_dir, rf.VERDICT, {})
    manifest = rf.read_json(run_dir, rf.MANIFEST, {})
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "ctdistill"))
    deploy = found.get("deploy") or {}
    tags = {"ctdistill.run_dir": str(run_dir.resolve()), "ctdistill.revision": str(manifest.get("git_revision")),
            "ctdistill.data_fingerprint": str((manifest.get("dataset") or {}).get("fingerprint")),
            "ctdistill.deployed": str(deploy.get("model"))}
    with mlflow.start_run(run_name=run_dir.resolve().name, tags=tags) as parent:
        mlflow.log_params(flat_params(config))
        headline = {f"deployed.{k}": float(deploy[k]) for k in ("accuracy", "f1", "size_mb", "accuracy_lo",
                                                                  "accuracy_hi") if deploy.get(k) is not None}
        total = rf.read_json(run_dir, rf.TIMINGS, {}).get("total_s")
        mlflow.log_metrics({**headline, **({"total_s": float(total)} if total is not None else {})})
        for name in TRACKED_FILES:
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name))
        for name in (deploy.get("file"), f"{deploy.get('file')}.json") if deploy.get("file") else ():
            if (run_dir / name).is_file():
                mlflow.log_artifact(str(run_dir / name), artifact_path="deploy")
        for stage, record in stage_records(run_dir).items():
            with mlflow.start_run(run_name=stage, nested=True, tags={"ctdistill.stage": stage}):
                seconds = {"seconds": float(record["seconds"])} if record["seconds"] is not None else {}
                mlflow.log_metrics({**record["metrics"], **seconds})
    log.info("tracked in MLflow (%s): run %s", mlflow.get_tracking_uri(), parent.info.run_id)
    return parent.info.run_id


TRACKERS = {"mlflow": track_mlflow}  # choices.TRACKERS names them for --track
