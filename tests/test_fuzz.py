"""Fuzz-style check over every command (issue #31): generated bad flag values and generated bad files.

The cases are generated, not listed: every option of every command the parser declares gets every
value of ``BAD_VALUES``, so a flag added tomorrow is fuzzed without editing this file; files are
damaged by a seeded generator (random bytes, truncation at a random offset, a header that lies about
its size, a folder where a file should be). Whatever a command makes of them, it must end as a
refusal: a non-zero exit, an ``error:`` line (argparse's or ctdistill's) as the last thing said, no
traceback, no ``internal error``, and nothing written. Everything runs in-process and refuses before
any training starts, so the whole module takes seconds (default tier).
"""

from __future__ import annotations

import argparse
import random
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import ct_dicom, make_tree

from ctdistill.cli.main import main
from ctdistill.cli.options import build_parser

BAD_VALUES = ("nan", "inf", "-inf", "-1", "0", "", "abc", "1e999", "0,,1", "99999999999999999999", "-0.5", "../..")
MISSING = "no-such-path"

# What each command needs beside the fuzzed flag so that it refuses before any work: a path that
# does not exist. Left out: `doctor` (no input to refuse; its flags are the common ones, fuzzed elsewhere).
ANCHORS = {"run": ["--data", MISSING], "quantize": [MISSING], "report": [MISSING], "compare": [MISSING, MISSING],
           "predict": [MISSING, MISSING], "bench": [MISSING], "data prepare": [MISSING, "--out", "arrays"],
           "data inspect": [MISSING], "data audit": [MISSING, "--out", "audit"]}


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """``(words, subparser)`` of every leaf command: ``("run",)``, ``("data", "audit")``..."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, child in subs[0].choices.items():
        yield from commands(child, (*prefix, name))


def value_flags():
    """``(command words, flag)`` of every option that takes a value, generated from the parser."""
    for words, sub in commands(build_parser()):
        if " ".join(words) not in ANCHORS:
            continue
        for action in sub._actions:
            takes_value = action.option_strings and action.nargs is None and not isinstance(
                action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction, argparse._HelpAction,
                         argparse._VersionAction))
            if takes_value:
                yield words, action.option_strings[-1]


def outcome(args: list) -> tuple[int, str]:
    """``main(args)``'s exit code and its stderr, argparse's exits included."""
    try:
        return main([str(a) for a in args]), ""
    except SystemExit as exit_:
        return exit_.code, ""


def assert_refused(capsys, folder: Path, args: list, allowed=(1, 2), may_succeed: bool = False) -> str:
    """``args`` ends in a clean refusal and leaves ``folder`` as it was (or, ``may_succeed``, exits 0
    without a traceback: a damaged record the command does not need, or rebuilds)."""
    before = sorted(folder.rglob("*"))
    code, _ = outcome(args)
    err = capsys.readouterr().err
    said = err.strip().splitlines()
    assert "Traceback" not in err and "internal error" not in err, f"{args}:\n{err}"
    if code == 0 and may_succeed:
        return ""
    assert code in allowed, f"{args}: exit {code}\n{err}"
    assert said and "error: " in said[-1], f"{args}: last line {said[-1:]}"
    assert "Traceback" not in err and "internal error" not in err, f"{args}:\n{err}"
    assert sorted(folder.rglob("*")) == before, f"{args} wrote {set(folder.rglob('*')) - set(before)}"
    return said[-1]


FLAGS = sorted(set(value_flags()))


def test_the_generator_reaches_every_command_and_the_numeric_flags():
    reached = {" ".join(words) for words, _ in FLAGS}
    assert reached == set(ANCHORS)
    flags = {flag for _, flag in FLAGS}
    assert {"--lr", "--seeds", "--window-width", "--threads", "--resamples", "--threshold", "--out"} <= flags
    assert len(FLAGS) * len(BAD_VALUES) >= 500


@pytest.mark.parametrize("words, flag", FLAGS, ids=[f"{' '.join(w)} {f}" for w, f in FLAGS])
def test_every_flag_refuses_every_bad_value_cleanly(tmp_path, monkeypatch, capsys, words, flag):
    monkeypatch.chdir(tmp_path)  # a default output folder would appear here
    for value in BAD_VALUES:
        assert_refused(capsys, tmp_path, [*words, *ANCHORS[" ".join(words)], flag, value])


# ---- generated bad files ----------------------------------------------------------------------------

def png_bytes(size: int = 24) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(size).integers(0, 255, (size, size), np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def lying_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (a decompression bomb's header, no pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def damaged(rng: random.Random, good: bytes) -> list[bytes]:
    """Versions of ``good`` a disk, a download or a careless copy produces."""
    cut = rng.randrange(1, len(good) - 1)
    flipped = bytearray(good)
    for index in rng.sample(range(len(good)), k=max(1, len(good) // 50)):
        flipped[index] ^= 0xFF
    return [b"", good[:cut], bytes(flipped), bytes(rng.getrandbits(8) for _ in range(len(good))), b"\x00" * 16]


def dicom_bytes(tmp_path: Path) -> bytes:
    return ct_dicom(tmp_path / "good.dcm", np.full((16, 16), 40, np.int16)).read_bytes()


def bad_inputs(tmp_path: Path) -> list[Path]:
    """Every generated bad image or DICOM, each the only file of its own folder."""
    rng, made = random.Random(31), []
    payloads = [(".png", p) for p in damaged(rng, png_bytes())] + \
               [(".dcm", p) for p in damaged(rng, dicom_bytes(tmp_path))[1:]] + \
               [(".png", lying_png(60000, 60000)), (".png", b"%PDF-1.4 not an image"), (".jpg", png_bytes()[:40])]
    for index, (suffix, payload) in enumerate(payloads):
        folder = tmp_path / f"bad{index}"
        folder.mkdir()
        (folder / f"slice{suffix}").write_bytes(payload)
        made.append(folder / f"slice{suffix}")
    (tmp_path / "dir-as-file" / "folder.png").mkdir(parents=True)
    made.append(tmp_path / "dir-as-file" / "folder.png")
    return made


def test_predict_refuses_inputs_that_hold_nothing_readable(tmp_path, capsys, finished_run):
    _, run_dir = finished_run
    inputs = bad_inputs(tmp_path)
    assert len(inputs) == 13
    for path in inputs:
        for given in (path, path.parent):
            last = assert_refused(capsys, tmp_path, ["predict", run_dir, given], allowed=(2,))
            assert "could not be read" in last or "no image" in last or str(path.parent) in last, last


def test_models_and_run_folders_damaged_every_way_are_refused(tmp_path, capsys, finished_run):
    """The deployable model, its card, a Keras student and the run's own records, each damaged by the
    generator: predict, bench, report and compare refuse in one line, or (a record they rebuild) succeed;
    never a traceback."""
    _, source = finished_run
    rng = random.Random(7)
    image = tmp_path / "in.png"
    image.write_bytes(png_bytes(16))
    tflite = sorted(source.glob("*_int8.tflite"))[0].relative_to(source)
    card, keras_file = tflite.with_name(tflite.name + ".json"), sorted(source.glob("*_Student.keras"))[0].name
    uses = {tflite: [["predict", tflite, image], ["bench", tflite, "--calls", "1", "--threads", "1", "--out", "b.csv"]],
            card: [["predict", tflite, image]],
            Path(keras_file): [["bench", keras_file, "--calls", "1", "--threads", "1", "--out", "b.csv"]],
            Path("summary.csv"): [["report", ".", "--out", "report"], ["compare", ".", source, "--out", "compare"]],
            Path("config.json"): [["report", ".", "--out", "report"], ["predict", ".", image]],
            Path("quant_gate.json"): [["predict", ".", image]]}
    cases = 0
    for target, commands_ in uses.items():
        assert (source / target).is_file(), target
        for index, payload in enumerate(damaged(rng, (source / target).read_bytes())):
            run_dir = tmp_path / f"run-{target.name}-{index}"
            shutil.copytree(source, run_dir)
            (run_dir / target).write_bytes(payload)
            for args in commands_:
                full = [run_dir / a if isinstance(a, Path) and a != image else a for a in args]
                full = [run_dir if a == "." else run_dir / a if a in ("report", "compare", "b.csv") else a
                        for a in full]
                assert_refused(capsys, tmp_path, full, may_succeed=True)
                cases += 1
    assert cases == 45


@pytest.mark.parametrize("command", [["data", "inspect"], ["data", "audit"], ["data", "prepare"]])
def test_data_commands_on_a_tree_of_only_bad_files(tmp_path, capsys, command):
    """A class tree whose every file is unreadable: inspect lists them all (it describes, exit 0);
    audit and prepare have nothing to work on and refuse (a tree with some good files skips the bad
    ones with a report: tests/test_bad_input.py)."""
    tree = make_tree(tmp_path / "tree", per_class=1)
    rng = random.Random(3)
    for image in sorted(tree.rglob("*.png")):
        broken = damaged(rng, image.read_bytes())
        image.write_bytes(rng.choice([broken[0], broken[1], broken[3], broken[4]]))  # never readable
    n_files = len(list(tree.rglob("*.png")))
    if command[1] == "inspect":
        assert main([*command, str(tree)]) == 0
        assert f"unreadable: {n_files} file(s)" in capsys.readouterr().out
        return
    assert_refused(capsys, tmp_path, [*command, tree, "--out", tmp_path / "out"], allowed=(2,))


def test_numpy_layouts_damaged_every_way_are_refused(tmp_path, capsys):
    rng = random.Random(5)
    good = tmp_path / "good"
    good.mkdir()
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        np.save(good / f"X_{split}.npy", np.random.default_rng(0).random((n, 8, 8, 1), np.float32))
        np.save(good / f"y_{split}.npy", np.arange(n) % 2)
    cases = 0
    for name in ("X_train.npy", "y_test.npy"):
        for index, payload in enumerate(damaged(rng, (good / name).read_bytes())):
            layout = tmp_path / f"{name}-{index}"
            shutil.copytree(good, layout)
            (layout / name).write_bytes(payload)
            for command in (["data", "inspect", layout], ["data", "audit", layout, "--out", tmp_path / "a"]):
                assert_refused(capsys, tmp_path, command, allowed=(2,))
                cases += 1
    assert cases == 20
