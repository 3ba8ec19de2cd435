"""Runs side by side, for people: ``compare.csv`` and ``compare.html`` from ``assess.runs.compare_runs``
(formatting only)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ctdistill.report.page import CSS
from ctdistill.run.folder import atomic_path, write_csv

COMPARE_FILES = ("compare.csv", "compare.html")


def paired_sentence(row) -> str:
    """One paired difference in words: which run, against which, by how much, how sure."""
    interval = (f" (95% CI {100 * row.accuracy_gain_lo:+.1f} to {100 * row.accuracy_gain_hi:+.1f})"
                if "accuracy_gain_lo" in row._fields and pd.notna(row.accuracy_gain_lo) else "")
    return (f"{row.run} against {row.against}, on the {row.n_shared} test images both scored: "
            f"{100 * row.accuracy_gain:+.1f} points of accuracy{interval}, macro-F1 {row.f1_gain:+.3f}; "
            f"{row.a_only_correct} image(s) only {row.run} gets right, {row.b_only_correct} only {row.against} "
            f"(McNemar's exact p = {row.p_value:.2g})")


def compare_table(found: dict) -> pd.DataFrame:
    """``compare.csv``: one row per run: its model and headline numbers, the differing keys' values, and
    its paired difference against the first run (empty for the first run and where no image is shared)."""
    table = found["headline"].copy()
    for values in found["differs"].to_dict("records"):  # run names need not be identifiers
        table[f"config.{values.pop('key')}"] = [values.get(r, "") for r in table["run"]]
    if len(found["paired"]):
        table = table.merge(found["paired"], on="run", how="left")
    return table


def write_compare(found: dict, out: Path) -> list[Path]:
    """``compare.csv`` and ``compare.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    csv = write_csv(compare_table(found), out / COMPARE_FILES[0])
    sentences = [paired_sentence(r) for r in found["paired"].itertuples()] if len(found["paired"]) else [
        "No two runs share their test images: their numbers are side by side, not paired."]
    body = ["<!doctype html><html><head><meta charset='utf-8'><title>ctdistill: runs compared</title>",
            f"<style>{CSS}</style></head><body><h1>Runs compared</h1>",
            "<h2>What differs in their configurations</h2>",
            found["differs"].to_html(index=False) if len(found["differs"]) else
            "<p>Nothing: the same configuration.</p>",
            "<h2>Each run's chosen model on its own test split</h2>",
            found["headline"].to_html(index=False, float_format=lambda v: f"{v:.3f}"),
            "<h2>Paired differences (the same test images)</h2><ul>",
            *(f"<li>{html.escape(s)}</li>" for s in sentences), "</ul></body></html>"]
    with atomic_path(out / COMPARE_FILES[1]) as tmp:
        Path(tmp).write_text("\n".join(body), encoding="utf-8")
    return [csv, out / COMPARE_FILES[1]]
