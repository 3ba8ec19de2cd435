"""The data audit in words: the terminal summary of ``data.audit`` and the phrases the report and the
verdict reuse for its findings (formatting only; ``data.audit`` computes them)."""

from __future__ import annotations


def audit_text(summary: dict) -> str:
    """The terminal summary of a data audit."""
    lines = [summary["class_text"]] if summary.get("class_text") else []
    lines += [f"{summary['n_files']} files; {summary['n_exact_groups']} groups of identical pixels "
             f"({summary['n_redundant_exact_copies']} redundant copies); {summary['n_near_groups']} groups of "
             f"near copies (phash distance <= {summary['threshold']})"]
    cross = summary["cross_split_files"]
    lines.append(f"LEAKAGE: {len(cross)} valid/test files have a copy in an earlier split" if cross
                 else "no valid/test file has a copy in an earlier split")
    for key, counts in summary["duplicates_by_split_and_class"].items():
        lines.append(f"  {key}: {counts['files']} files in {counts['distinct']} copy groups, "
                     f"{counts['cross_split']} with a copy in an earlier split")
    for conflict in summary["label_conflict_groups"]:
        lines.append(f"LABEL CONFLICT: {' vs '.join(conflict['labels'])}: " + ", ".join(conflict["files"]))
    if "n_scan_groups" in summary:
        lines.append(scan_words(summary))
    for scan in summary.get("scans_straddling_splits", []):
        lines.append(f"SCAN ACROSS SPLITS: scan group {scan['group']} (" + ", ".join(
            f"{n} {s}" for s, n in scan["splits"].items()) + "): " + ", ".join(scan["files"]))
    frame = summary.get("framing") or {}
    if frame:
        lines.append("framing: the body fills a median " + ", ".join(
            f"{100 * v:.0f}% ({s})" for s, v in frame["median_body_share"].items()) + " of the image")
        for split, diff in frame["splits_framed_unlike_train"].items():
            lines.append(f"FRAMING SHIFT: {split} images are framed unlike train (the body's median share differs by "
                         f"{100 * diff:+.0f} points); --crop body removes the difference")
        if frame["no_body_found"]:
            lines.append(f"no body found in {len(frame['no_body_found'])} image(s) (kept whole by --crop body)")
    base = summary.get("shortcut_baseline")
    if base:
        lines.append(f"{'SHORTCUT RISK: ' if base['above_chance'] else 'shortcut baseline: '}{shortcut_words(base)}")
    for tag in summary.get("label_tags", []):
        lines.append(f"SHORTCUT RISK: {label_tag_words(tag)}")
    shift = summary.get("train_test_shift")
    if shift:
        lines.append(f"{'TRAIN/TEST SHIFT: ' if shift['shifted'] else 'train/test shift: '}{shift_words(shift)}")
    for risk in summary["shortcut_risks"]:
        if risk["flags"]:
            lines.append(f"SHORTCUT RISK: class {risk['label']} differs in {', '.join(risk['flags'])} "
                         f"(median {risk['median_width']:g}x{risk['median_height']:g} px, "
                         f"{risk['area_ratio_vs_rest']:g}x the other classes' pixel count)")
    return "\n".join(lines)


def scan_words(summary: dict) -> str:
    """The audit's scan groups (``data.scans.scan_findings``) in one line."""
    crossed = summary.get("scan_cross_split_files") or []
    return (f"scans found in the pixels (pictures within {summary['same_scan_threshold']} of a neighbour, chained): "
            f"{summary['n_scan_groups']} group(s) of {summary['images_in_scan_groups']} images, "
            f"{summary['n_scan_groups_beyond_copies']} joining more than copies (adjacent slices); "
            f"{summary.get('n_scans_straddling_splits', 0)} such scan(s) straddle the given splits, and "
            f"{len(crossed)} valid/test image(s) share a scan, not a copy, with an earlier split")


def shortcut_words(base: dict) -> str:
    """The shortcut baseline's finding (``data.shortcuts.shortcut_baseline``), as the terminal and the report say it."""
    return (f"file metadata alone predicts the class with balanced accuracy {base['balanced_accuracy']:.2f} "
            f"(95% CI {base['lo']:.2f}-{base['hi']:.2f}; chance {base['chance']:.2f}), carried by "
            + ", ".join(name for name, _ in base["top_features"][:3]))


def shift_words(shift: dict) -> str:
    """The train/test shift classifier's finding (``data.shortcuts.train_test_shift``)."""
    words = (f"file metadata tells test images from the others with AUC {shift['auc']:.2f} (95% CI "
             f"{shift['lo']:.2f}-{shift['hi']:.2f}; 0.5 = indistinguishable), carried by "
             + ", ".join(name for name, _ in shift["top_features"][:3]))
    pixels = shift.get("pixels") or {}
    if pixels:
        words += "; 8x8 thumbnails do with AUC " + ", ".join(
            f"{v['auc']:.2f} ({v['lo']:.2f}-{v['hi']:.2f}) on the {view}" for view, v in pixels.items())
    return words


def label_tag_words(tag: dict) -> str:
    """One ``data.shortcuts.label_tags`` finding in words."""
    value = "is present" if tag["value"] == "(present)" else f"is {tag['value']!r}"
    return (f"the DICOM header tag {tag['tag']} {value} in {tag['files']} file(s), all of class {tag['class']} "
            f"({tag['files']} of its {tag['class_files']}; Fisher's exact p = {tag['p']:.2g}): the header alone gives "
            "their label away")
