"""``ctdistill`` command line: parse, build the config, call one library function. Nothing else.

Run options are declared once, in ``ctdistill.cli.options.RUN_OPTIONS`` (flag -> config key, type,
help); a flag that is not given leaves the config file's (or the default) value alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from ctdistill.cli.options import RUN_OPTIONS, build_parser
from ctdistill.core.errors import CtdistillError
from ctdistill.core.interrupt import pressed, watching
from ctdistill.core.quiet import LOG_FORMAT, quiet_library_logs


def cmd_run(args: argparse.Namespace) -> int:
    # The configuration is checked before Keras and TensorFlow load (seconds), so a typo fails at once.
    from ctdistill.config import Config
    from ctdistill.core.values import read_values
    from ctdistill.run.preflight import check_data_path, check_executor, check_tracker

    overrides = {key: getattr(args, key) for _, key, _, _ in RUN_OPTIONS if getattr(args, key) is not None}
    if args.resume:
        from ctdistill.run.book import resumed_config

        if args.out:
            raise CtdistillError("--resume continues RUN_DIR in place; leave out --out")
        cfg = resumed_config(Path(args.resume), {**(read_values(args.config) if args.config else {}), **overrides})
    else:
        cfg = Config.from_file(args.config, overrides) if args.config else Config.from_mapping(overrides, "flags")
    check_executor(args.executor, args.ray_address)
    check_tracker(args.track)
    check_data_path(cfg.data)  # the commonest mistake, also checked before any weights download
    use_caches(args.cache_dir, args.compile_cache)
    if not args.debug:  # --debug keeps TensorFlow's start-up lines
        from ctdistill.core.quiet import import_backend_quietly

        import_backend_quietly()
    from ctdistill.run.pipeline import run

    print(run(cfg, args.resume or args.out, resume=bool(args.resume), executor=args.executor,
              ray_address=args.ray_address, track=args.track))
    return 0


def use_caches(folder: str | None, compile_cache: bool) -> None:
    """``--cache-dir`` and ``--no-compile-cache``, said to the library through its environment variables
    (``core.caches``), and TensorFlow's XLA cache flag set before TensorFlow loads."""
    from ctdistill.core import caches

    if folder:
        os.environ[caches.CACHE_ENV] = str(Path(folder).expanduser().resolve())
    if not compile_cache:
        os.environ[caches.SWITCH_ENV] = "off"
    caches.tensorflow_flags()


def cmd_prepare(args: argparse.Namespace) -> int:
    from ctdistill.config import Config
    from ctdistill.data.prepare import prepare_arrays

    Config.from_mapping({"image_size": args.image_size, "channels": args.channels, "weights": "none"}, "flags")
    for path in prepare_arrays(args.tree, args.out, args.image_size, args.channels, args.class_map, args.crop):
        print(path)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ctdistill.data.inspect import format_inspection, inspect_path

    info = inspect_path(args.path, args.class_map)
    print(json.dumps(info, indent=2) if args.json else format_inspection(info))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from ctdistill.data.audit import DEFAULT_THRESHOLD, STORED_AUDIT, audit_path, write_audit
    from ctdistill.data.audit_text import audit_text
    from ctdistill.report import CROPS, crop_sheet
    from ctdistill.run.folder import refuse_existing

    out = Path(args.out)
    refuse_existing(*(out / name for name in (*STORED_AUDIT, CROPS)))
    result = audit_path(args.path, DEFAULT_THRESHOLD if args.threshold is None else args.threshold, args.class_map)
    print(audit_text(result.summary))
    for path in [*write_audit(result.table, result.summary, out), crop_sheet(result.table, out / CROPS)]:
        if path is not None:
            print(path)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from ctdistill.core.quiet import import_backend_quietly

    import_backend_quietly()
    from ctdistill.run.environment import caches_text, environment, environment_text

    info = environment()
    print(environment_text(info))
    print(caches_text(info["backend"]))
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    if not args.debug:
        from ctdistill.core.quiet import import_backend_quietly

        import_backend_quietly()
    from ctdistill.run.pipeline import quantize_run

    print(quantize_run(Path(args.run_dir), args.data, args.class_map))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ctdistill.report import build_report
    from ctdistill.report.tables import verdict_text
    from ctdistill.run import folder as rf

    changed = [flag for flag, value in (("--resamples", args.resamples), ("--bins", args.bins),
                                        ("--ci-method", args.ci_method)) if value is not None]
    if changed and not args.out:  # a run folder's results change only through --resume, never in place
        raise CtdistillError(f"{args.run_dir}: {', '.join(changed)} change the run's numbers; write that report "
                             "elsewhere with --out DIR (the run folder keeps the run's own)")
    out = Path(args.out) if args.out else Path(args.run_dir)
    for path in build_report(Path(args.run_dir), args.out, n_bins=args.bins, n_resamples=args.resamples,
                             ci_method=args.ci_method):
        print(path)
    print("\nVerdict:\n" + "\n".join(f"  {line}" for line in verdict_text(rf.read_json(out, rf.VERDICT))))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ctdistill.assess.runs import compare_runs
    from ctdistill.report.runs import COMPARE_FILES, paired_sentence, write_compare
    from ctdistill.run.folder import refuse_existing

    if len(args.run_dirs) < 2:
        raise CtdistillError("compare needs two or more run folders")
    out = Path(args.out)
    refuse_existing(*(out / name for name in COMPARE_FILES))
    found = compare_runs([Path(r) for r in args.run_dirs], args.resamples)
    print(found["headline"].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for row in found["paired"].itertuples() if len(found["paired"]) else []:
        print(paired_sentence(row))
    for path in write_compare(found, out):
        print(path)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ctdistill.predict import counts_text, predict_paths, shown_path  # imports Keras only for a Keras model
    from ctdistill.run.folder import atomic_path, refuse_existing

    out = Path(args.out) if args.out else None
    if out is not None:
        if out.suffix not in (".csv", ".json"):
            raise CtdistillError(f"{out}: --out must end in .csv or .json")
        refuse_existing(out)
    explain = Path(args.explain) if args.explain else None
    if explain is not None and explain.exists() and (not explain.is_dir() or any(explain.iterdir())):
        raise CtdistillError(f"{explain}: --explain needs a new or empty folder (nothing is overwritten)")
    table, failed = predict_paths(args.model, args.inputs, args.teacher, args.mode,
                                  (args.window_level, args.window_width), explain)
    print(f"model: {shown_path(table.attrs['model'])}\n  chosen: {table.attrs['reason']}")
    for warning in table.attrs["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    shown = table.assign(file=table["file"].map(shown_path))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(table) else "no readable input")
    print(counts_text(table))
    if out is not None:
        with atomic_path(out) as tmp:
            table.to_csv(tmp, index=False) if out.suffix == ".csv" else table.to_json(tmp, orient="records", indent=1)
        print(out)
    for message in failed:
        print(f"skipped: {message}", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(failed) + table['file'].nunique()} inputs could not be read",
              file=sys.stderr)
    return 2 if not len(table) else 1 if failed else 0  # nothing predicted at all: refused input


def cmd_bench(args: argparse.Namespace) -> int:
    from ctdistill.core.quiet import import_backend_quietly

    if not args.debug:
        import_backend_quietly()
    from ctdistill.assess.latency import bench_models
    from ctdistill.run import folder as rf
    from ctdistill.run.folder import refuse_existing

    run_dir = Path(args.models[0]) if len(args.models) == 1 and Path(args.models[0]).is_dir() else None
    out = Path(args.out) if args.out else (run_dir or Path(".")) / rf.BENCH
    refuse_existing(out)
    table = bench_models(args.models, args.threads, args.calls, batch=args.batch,
                         progress=lambda m: logging.getLogger("ctdistill").info("bench: %s", m))
    print(table.round(3).to_string(index=False))
    print(rf.write_csv(table, out))
    if run_dir is not None and (run_dir / rf.SUMMARY).is_file():
        from ctdistill.report import build_report

        build_report(run_dir)  # adds the latency-vs-accuracy chart
        print(run_dir / rf.REPORT_HTML)
    return 0


COMMANDS = {("run", None): cmd_run, ("quantize", None): cmd_quantize, ("doctor", None): cmd_doctor,
            ("bench", None): cmd_bench, ("report", None): cmd_report, ("predict", None): cmd_predict,
            ("compare", None): cmd_compare,
            ("data", "prepare"): cmd_prepare, ("data", "inspect"): cmd_inspect, ("data", "audit"): cmd_audit}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.backend:  # before Keras is imported: the backend is fixed at import
        os.environ["KERAS_BACKEND"] = args.backend
    # Before TensorFlow is imported: hide its C++ info/warning lines (never TF_ENABLE_ONEDNN_OPTS=0,
    # which hides a banner but makes training 2-5x slower; see the stack notes).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, **LOG_FORMAT)
    if not args.debug:
        quiet_library_logs()
    handler = COMMANDS[(args.command, getattr(args, "data_command", None))]
    with watching():
        return _call(handler, args)


def _call(handler, args: argparse.Namespace) -> int:
    """``handler(args)``'s exit code; every failure becomes one ``error:`` line (the traceback with --debug)."""
    try:
        from ctdistill.run.preflight import check_backend

        check_backend(os.environ.get("KERAS_BACKEND"))
        return handler(args)
    except CtdistillError as exc:
        if args.debug:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ctdistill predict ... | head`: the reader left; say nothing (Python's docs' recipe)
        with contextlib.suppress(OSError, ValueError):  # no real stdout (embedded, captured): nothing to silence
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # disk full, permissions, a file vanishing under us
        if args.debug:
            raise
        print(f"error: {exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or one_line(exc)}",
              file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line here, the traceback with --debug
        if pressed() and not args.debug:  # Ctrl-C that a library turned into its own error
            print("interrupted", file=sys.stderr)
            return 130
        if args.debug:
            raise
        print(f"error: internal error {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the "
              "traceback, and please report it)", file=sys.stderr)
        return 1


def one_line(exc: BaseException) -> str:
    """The message on one line (library messages sometimes span several)."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
