"""The commands the documents quote still parse: a flag renamed or removed fails here, not for a reader.

Every ``ctdistill <command> ...`` in README.md, BENCHMARKS.md and docs/*.md (code blocks line by line, inline
code spans whole; shell comments, pipes and ``&&`` cut off) is parsed by the real parser, without
running it. Placeholders (``...``, ``[--opt]``, ``<dir>``, ``$s``) and bare mentions
(``ctdistill quantize RUN_DIR``) are not commands to copy and are left out.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from ctdistill.cli.options import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "BENCHMARKS.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
SUB = r"(run|report|predict|quantize|bench|doctor|data)"


def snippets(text: str) -> list[str]:
    """Code lines of fenced blocks and whole inline code spans, backslash continuations joined."""
    text = re.sub(r"\\\n\s*", " ", text)
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return lines + [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", text)]


def commands(text: str) -> list[str]:
    """The ``ctdistill`` command lines quoted in ``text``, without the program name."""
    found = []
    for line in snippets(text):
        for part in re.split(r"\s(?:&&|\||;|do|then)\s|;\s*$", re.sub(r"\s#.*$", "", line)):
            match = re.search(r"(?:^|[\s/])ctdistill\s+" + SUB + r"\b(.*)$", part)
            if not match:
                continue
            cmd = (match.group(1) + match.group(2)).split(" >")[0].split(" 2>")[0].strip()
            words = cmd.split()[1:]
            mention = all(re.fullmatch(r"[A-Z_]+", w) or w in ("audit", "prepare", "inspect") for w in words)
            if not (mention or re.search(r"\.\.\.|\[|<|\$|\bctdistill\b", cmd)):
                found.append(cmd)
    return sorted(set(found))


def parse_error(cmd: str) -> str | None:
    """argparse's last error line for ``ctdistill cmd``, None when it parses."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(shlex.split(cmd))
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize("doc", DOCS)
def test_every_quoted_command_still_parses(doc):
    quoted = commands((ROOT / doc).read_text(encoding="utf-8"))
    least = {"README.md": 5, "BENCHMARKS.md": 10}.get(doc, 0)  # the extraction is not vacuous
    assert len(quoted) >= least, f"{doc}: the extraction found only {quoted}"
    broken = [f"ctdistill {cmd}: {error}" for cmd in quoted if (error := parse_error(cmd))]
    assert not broken, f"{doc} quotes commands that no longer parse (fix them, or mark them as history):\n" + \
        "\n".join(broken)


def test_the_check_catches_a_removed_flag():
    text = "Run `ctdistill run --data x --no-such-flag 3` or\n```\nctdistill predict runs/a x.png  # ok\n```\n"
    assert commands(text) == ["predict runs/a x.png", "run --data x --no-such-flag 3"]
    assert "unrecognized arguments: --no-such-flag" in parse_error("run --data x --no-such-flag 3")
    assert parse_error("predict runs/a x.png") is None
    assert commands("`ctdistill predict RUN_DIR` and `ctdistill run ... --crop body`") == []
