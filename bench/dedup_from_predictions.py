"""Official vs de-duplicated test accuracy of a run, recomputed from its saved predictions.

Usage: python bench/dedup_from_predictions.py AUDIT_CSV RUN_DIR MODEL [MODEL ...]

For runs made before ctdistill reported ``*_dedup`` columns itself: a test image counts in the
de-duplicated view when the audit gives it no ``cross_split`` flag. Prints Markdown table rows:
model | official % | de-duplicated % | normal official % (n) | normal de-duplicated % (n).
"""

import sys

import pandas as pd


def main(audit_csv: str, run: str, models: list[str]) -> None:
    audit = pd.read_csv(audit_csv).set_index("path")
    cross = audit["flags"].fillna("").str.contains("cross_split")
    for model in models:
        pred = pd.read_csv(f"{run}/predictions/{model}.csv")
        test = pred[pred["split"] == "test"]
        keep = ~test["file"].map(cross)
        ok = test["true_label"] == test["predicted_label"]
        normal = test["true_label"] == "normal"
        print(f"| {model} | {100 * ok.mean():.1f} | {100 * ok[keep].mean():.1f} | "
              f"{100 * ok[normal].mean():.1f} ({normal.sum()}) | {100 * ok[keep & normal].mean():.1f} "
              f"({(keep & normal).sum()}) |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
