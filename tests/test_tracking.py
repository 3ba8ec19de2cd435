"""--track mlflow: a finished run reaches a real MLflow store (local, and a server on 127.0.0.1) and reads back
the same configuration, metrics, stage timings and files as the run folder holds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest

pytest.importorskip("mlflow", reason="MLFLOW ABSENT: pip install 'ctdistill[mlflow]' (the test extra has it)")

from ctdistill.run.pipeline import track_step  # noqa: E402
from ctdistill.run.tracking import flat_params, stage_records  # noqa: E402


def read_back(run_id: str) -> tuple:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}'")
    artifacts = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "deploy")}
    return parent, {c.data.tags["ctdistill.stage"]: c for c in children}, artifacts


def check_tracked(run_dir, run_id) -> None:
    parent, children, artifacts = read_back(run_id)
    config = json.loads((run_dir / "config.json").read_text())
    assert parent.data.params == flat_params(config)
    deploy = json.loads((run_dir / "verdict.json").read_text())["deploy"]
    assert parent.data.metrics["deployed.accuracy"] == pytest.approx(deploy["accuracy"])
    assert parent.data.tags["ctdistill.deployed"] == deploy["model"]
    assert {"report.html", "report.md", "summary.csv", "metrics.csv", "manifest.json"} <= artifacts
    assert f"deploy/{deploy['file']}" in artifacts
    metrics = pd.read_csv(run_dir / "metrics.csv").set_index("model")
    timings = json.loads((run_dir / "timings.json").read_text())
    assert set(children) == set(stage_records(run_dir)) and len(children) >= 4
    assert children["scratch"].data.metrics["seconds"] == pytest.approx(timings["scratch_s"])
    assert children["scratch"].data.metrics["accuracy"] == pytest.approx(metrics.loc["scratch_student", "accuracy"])
    teacher = config["teachers"][0]
    assert children[f"distill-{teacher}"].data.metrics["f1"] == pytest.approx(metrics.loc[f"{teacher}_student", "f1"])
    assert children[f"quantize-{teacher}"].data.metrics["int8.accuracy"] == pytest.approx(
        metrics.loc[f"{teacher}_student_int8", "accuracy"])


def test_a_finished_run_reads_back_from_a_local_mlflow_store_and_its_folder_is_untouched(finished_run, tmp_path,
                                                                                        monkeypatch):
    import mlflow

    _, run_dir = finished_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts land under the working directory's mlruns/
    before = sorted((p.relative_to(run_dir), p.stat().st_mtime_ns) for p in run_dir.rglob("*"))
    track_step(run_dir, "mlflow")
    assert sorted((p.relative_to(run_dir), p.stat().st_mtime_ns) for p in run_dir.rglob("*")) == before
    run_id = mlflow.search_runs(experiment_names=["ctdistill"], filter_string="tags.mlflow.runName = "
                                f"'{run_dir.name}'", output_format="list")[0].info.run_id
    check_tracked(run_dir, run_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_finished_run_reaches_an_mlflow_server_on_localhost(finished_run, tmp_path, monkeypatch):
    from ctdistill.run.tracking import track_mlflow

    _, run_dir = finished_run
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "mlflow server did not start"
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        check_tracked(run_dir, track_mlflow(run_dir))
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_an_unreachable_tracker_fails_in_one_line_naming_the_finished_run(finished_run, monkeypatch):
    from ctdistill.core.errors import CtdistillError

    _, run_dir = finished_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(CtdistillError, match=r"the run finished and its folder is complete, but --track mlflow "
                                             r"failed") as caught:
        track_step(run_dir, "mlflow")
    assert str(run_dir) in str(caught.value) and "\n" not in str(caught.value)
