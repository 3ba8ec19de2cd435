"""The command line's flags and the parser of every command (:func:`build_parser`).

``ctdistill run``'s flags are generated from the :class:`ctdistill.config.Config` fields, where each
option's default, rule, flag and help are declared together; so is the README's option table
(:func:`markdown_table`, compared with the README by ``tests/test_config.py``). A run flag that is
not given leaves the config file's (or the default) value alone; ``bool`` keys get ``--flag`` /
``--no-flag``. :func:`help_text` appends each default, read from the dataclass, so the help can
never disagree with the behaviour (``tests/test_install.py`` checks every flag).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from ctdistill.config import PRETRAINED_TEACHER_EPOCHS, Config
from ctdistill.core.choices import CI_METHODS, CROPS, EXECUTORS, TRACKERS
from ctdistill.data.dicom import LUNG_WINDOW


def _flag_type(field: dataclasses.Field) -> type:
    """What argparse parses a flag's text into (``Config.from_mapping`` then checks and coerces it)."""
    text = str(field.type)
    if text.startswith("tuple") or "str" in text:
        return str
    return {"bool": bool, "int": int, "float": float}.get(text.replace(" | None", ""), str)


# (flag, config key, argparse type, help) of every `ctdistill run` flag, generated from the Config fields.
RUN_OPTIONS = tuple((Config.flag(f.name), f.name, _flag_type(f), Config.help(f.name))
                    for f in dataclasses.fields(Config) if Config.flag(f.name) is not None)
RUN_HELP = {key: text for _, key, _, text in RUN_OPTIONS}  # the same words where other commands take a run flag

# Defaults that read better in words than as a value.
DEFAULT_WORDS = {"data": "the built-in synthetic CT phantoms", "class_map": "none",
                 "group_by": "none (copy groups only)",
                 "teacher_epochs": f"--epochs, or {PRETRAINED_TEACHER_EPOCHS} if pretrained",
                 "teachers": "the seed's seven"}


def default_of(key: str):
    """The default of config key ``key``, read from the dataclass (the one source)."""
    field = Config.__dataclass_fields__[key]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def format_default(key: str) -> str:
    """The default of ``key`` as the help shows it: ``True`` -> on, tuples comma-separated, numbers as %g."""
    if key in DEFAULT_WORDS:
        return DEFAULT_WORDS[key]
    value = default_of(key)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def help_text(key: str, text: str) -> str:
    """``text`` with the configured default appended: ``... (default: 32)``; ``%`` escaped for argparse."""
    return f"{text} (default: {format_default(key)})".replace("%", "%%")


def markdown_table() -> str:
    """The README's option table: every field's flag, default and help, from the Config declarations."""
    rows = ["| flag | config key | default | what it does |", "|---|---|---|---|"]
    for field in dataclasses.fields(Config):
        flag = Config.flag(field.name)
        cell = f"`{flag}`" if flag else "(file only)"
        words = Config.help(field.name).replace("|", "\\|")  # a bar would end the table cell
        rows.append(f"| {cell} | `{field.name}` | {format_default(field.name)} | {words} |")
    return "\n".join(rows)


def ruled(key: str):
    """An argparse type for a flag that sets config key ``key`` outside ``ctdistill run`` (report's
    ``--resamples``, prepare's ``--image-size``): the field's type and rule, declared once in ``Config``.

    Example:
        >>> ruled("ece_bins")("12")
        12
        >>> ruled("bootstrap_resamples")("-1")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: -1 must be 0 (no intervals) or >= 100
    """
    field = Config.__dataclass_fields__[key]
    kind = _flag_type(field)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number" if kind is int else
                                             f"{text!r} is not a number") from None
        rule = field.metadata.get("must")
        if rule and not rule[0](value):
            raise argparse.ArgumentTypeError(f"{text} {rule[1]}")
        return value

    parse.__name__ = key  # argparse names the type in its messages
    return parse


def number(kind: type = float, low: float | None = None, high: float | None = None, words: str = ""):
    """An argparse type for a finite number within ``[low, high]`` (either end open when None).

    Example:
        >>> number(int, 1)("0")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: 0 must be >= 1
        >>> number(float)("nan")
        Traceback (most recent call last):
        argparse.ArgumentTypeError: nan must be a finite number
    """
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if kind is int else 'number'}") \
                from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} must be a finite number")
        if (low is not None and value < low) or (high is not None and value > high):
            rule = words or (f"must be between {low:g} and {high:g}" if low is not None and high is not None else
                             f"must be >= {low:g}" if low is not None else f"must be <= {high:g}")
            raise argparse.ArgumentTypeError(f"{text} {rule}")
        return value

    parse.__name__ = kind.__name__
    return parse


def thread_counts(text: str) -> tuple[int, ...]:
    """``--threads 1,2``: positive whole numbers, comma-separated."""
    return tuple(number(int, 1)(part.strip()) for part in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctdistill", description=(
        "Distil ImageNet teachers into a tiny chest-CT student CNN, quantize it with LiteRT, and report "
        "accuracy, precision, recall, confusion matrices, sizes and the quantization impact."))
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the whole pipeline (teachers, distillation, baselines, quantization)",
                         description="Fine-tune teachers, distil a student from each, train the same student from "
                                     "scratch, quantize, evaluate, and write everything into a new run folder.")
    run.add_argument("--config", help="TOML or JSON file with config keys (flags override it)")
    for flag, key, typ, text in RUN_OPTIONS:
        if typ is bool:  # --strict / --no-strict
            run.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction, default=None,
                             help=help_text(key, text))
        else:
            run.add_argument(flag, dest=key, type=typ, default=None, help=help_text(key, text))
    run.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="where the stages run: local (this process, one after another) or ray (tasks on a Ray "
                          "cluster, side by side; needs ctdistill[ray]); the results are the same (default: local)")
    run.add_argument("--ray-address", help="with --executor ray: the cluster to join (auto, HOST:PORT or "
                                           "ray://HOST:PORT); default: start a Ray instance on this machine")
    run.add_argument("--track", choices=TRACKERS, default="none",
                     help="also send the finished run to an experiment tracker: mlflow (needs ctdistill[mlflow]; "
                          "the store is MLFLOW_TRACKING_URI, else MLflow's default in the working directory); "
                          "the run folder stays the source of truth (default: none)")
    run.add_argument("--cache-dir", help="ctdistill's cache folder: decoded images and compiled training steps "
                                         "(default: $CTDISTILL_CACHE, else ~/.cache/ctdistill)")
    run.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True,
                     help="keep compiled training steps on disk, so the next run of the same model, shapes and "
                          "versions skips compiling (JAX; TensorFlow where it compiles with XLA, on a GPU); "
                          "the results are the same either way (default: on)")
    run.add_argument("--out", help="new run folder (must not exist or be empty). Default: runs/run-<timestamp>")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run in RUN_DIR with its own "
                                                         "configuration: finished stages are kept, the rest run "
                                                         "again; other flags must not change its configuration")
    _common(run)

    doctor = sub.add_parser("doctor", help="the Keras backend, its devices, versions, and whether this machine can "
                                           "quantize (export to LiteRT)")
    _common(doctor)

    quant = sub.add_parser("quantize", help="quantize a run trained where TensorFlow or LiteRT were missing (e.g. on "
                                             "a JAX GPU box), then rebuild its tables and report",
                           description="Run the quantization, safety-gate and evaluation stages of a run whose "
                                       "training finished (on any machine or Keras backend); finished stages are kept.")
    quant.add_argument("run_dir", help="the run folder")
    quant.add_argument("--data", help="the dataset, if it lives elsewhere on this machine (same content, checked)")
    quant.add_argument("--class-map", help="the run's class map file, if it lives elsewhere on this machine")
    _common(quant)

    rep = sub.add_parser("report", help="rebuild a finished run's metrics, plots, report.html and report.md from its "
                                        "saved predictions (no retraining; works on a copied run folder)")
    rep.add_argument("run_dir", help="a finished run folder")
    rep.add_argument("--out", help="folder for the report files (default: the run folder)")
    rep.add_argument("--resamples", type=ruled("bootstrap_resamples"), default=None,
                     help=f"bootstrap resamples (default: the run's, {default_of('bootstrap_resamples')})")
    rep.add_argument("--bins", type=ruled("ece_bins"), default=None,
                     help=f"calibration bins (default: the run's, {default_of('ece_bins')})")
    rep.add_argument("--ci-method", choices=CI_METHODS, default=None,
                     help=f"bootstrap interval method (default: the run's, {default_of('ci_method')})")
    _common(rep)

    comp = sub.add_parser("compare", help="put finished runs side by side: the configuration keys that differ, each "
                                          "run's chosen model with intervals, and paired differences on shared "
                                          "test images; writes compare.csv and compare.html")
    comp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="two or more finished run folders (the first "
                                                                      "is the reference of the paired differences)")
    comp.add_argument("--out", default=".", help="folder for compare.csv and compare.html (default: the current "
                                                 "folder; existing files are not overwritten)")
    comp.add_argument("--resamples", type=ruled("bootstrap_resamples"), default=default_of("bootstrap_resamples"),
                      help="bootstrap resamples of the paired intervals (default %(default)s)")
    _common(comp)

    pred = sub.add_parser("predict", help="predict with an exported model on images, folders and DICOM files",
                          description="Predict with a .tflite or .keras model (or a run folder: its deployable "
                                      "student) on PNG/JPEG/... images, folders (recursively) and DICOM files (by "
                                      "content).")
    pred.add_argument("model", help=".tflite or .keras file with its model card (<file>.json), or a run folder: "
                                    "the student whose mode the quantization safety gate accepted (int8 unless "
                                    "it fell back) with the best validation accuracy")
    pred.add_argument("inputs", nargs="+", help="image files, folders, DICOM files")
    pred.add_argument("--out", help="write the table to a .csv or .json file (never overwrites)")
    pred.add_argument("--explain", metavar="DIR", help="write each image's occlusion map (where the answer comes "
                                                      "from) as an overlay PNG into DIR (a new or empty folder)")
    pred.add_argument("--teacher", help="run folder: the student of this teacher")
    pred.add_argument("--mode", help="run folder: this quantization mode instead of the gate's choice (float32 = the "
                                     "Keras student)")
    level, width = LUNG_WINDOW
    pred.add_argument("--window-level", type=number(float), default=level,
                      help=f"DICOM window level in HU (default {level:g})")
    pred.add_argument("--window-width", type=number(float, 1.0), default=width,
                      help=f"DICOM window width in HU, at least 1 (default {width:g})")
    _common(pred)

    bench = sub.add_parser("bench", help="latency and throughput of exported models (Keras and LiteRT), 1 thread "
                                         "and all threads")
    bench.add_argument("models", nargs="+", help=".tflite / .keras files, or a run folder (all its student models)")
    bench.add_argument("--out", help="CSV file (default: bench.csv in the run folder, or ./bench.csv; never "
                                     "overwrites)")
    bench.add_argument("--calls", type=number(int, 1), default=200,
                       help="timed batch-1 calls after warm-up (default 200)")
    bench.add_argument("--batch", type=number(int, 1), default=256, help="batch size for throughput (default 256)")
    bench.add_argument("--threads", type=thread_counts, help="comma-separated thread counts (default: 1 and all cores)")
    _common(bench)

    data = sub.add_parser("data", help="dataset tools: prepare, inspect, audit").add_subparsers(
        dest="data_command", required=True, metavar="ACTION")
    prep = data.add_parser("prepare", help="write the seed's numpy layout (X_/y_ train, val, test) from an image tree")
    prep.add_argument("tree", help="image folder tree (train/valid/test/<class>/...)")
    prep.add_argument("--out", required=True, help="output folder for the .npy files")
    prep.add_argument("--image-size", type=ruled("image_size"), default=default_of("image_size"),
                      help=help_text("image_size", "image height and width"))
    prep.add_argument("--channels", type=ruled("channels"), default=default_of("channels"),
                      help=help_text("channels", "1 or 3"))
    prep.add_argument("--crop", choices=CROPS, default=default_of("crop"),
                      help=help_text("crop", RUN_HELP["crop"]))
    _class_map(prep)
    _common(prep)
    insp = data.add_parser("inspect", help="counts per split and class, formats, modes and image sizes")
    insp.add_argument("path", help="dataset folder")
    insp.add_argument("--json", action="store_true", help="print JSON instead of text")
    _class_map(insp)
    _common(insp)
    audit = data.add_parser("audit", help="find exact and near duplicates, cross-split leakage, label conflicts "
                                          "and shortcut risks, scans that straddle splits; writes audit.csv, "
                                          "audit.json and crops.png (the body crop on a sample, to check by eye)")
    audit.add_argument("path", help="dataset folder (split tree, class-folder tree or numpy layout)")
    audit.add_argument("--out", default=".", help="folder for audit.csv, audit.json and crops.png (default: current "
                                                  "folder; existing audit files are not overwritten)")
    audit.add_argument("--threshold", type=number(int, 0, 64), default=None,
                       help="largest perceptual-hash Hamming distance (of 64 bits) that counts as a near copy "
                            "(default 1: CT slices look alike, larger values group different slices)")
    _class_map(audit)
    _common(audit)
    return parser


def _class_map(p: argparse.ArgumentParser) -> None:
    p.add_argument("--class-map", help=RUN_HELP["class_map"])


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                   help="Keras backend to train and predict with (default: $KERAS_BACKEND, else tensorflow); "
                        "LiteRT export always runs on TensorFlow")
    p.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")


def _version() -> str:
    from ctdistill import __version__
    return f"ctdistill {__version__}"


if __name__ == "__main__":  # python -m ctdistill.cli.options: the README's option table, regenerated
    print(markdown_table())
