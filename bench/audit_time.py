"""Wall time of the data audit (``data.audit.audit_path``) on one collection: one warm-up call (it fills
the decode cache), then the median of ``--repeats`` calls. Run it with two checkouts' ``src`` on
``PYTHONPATH`` to compare revisions side by side (BENCHMARKS.md, "The audit's bootstrap").

    PYTHONPATH=src python bench/audit_time.py ../shared/data/chest-ct-scan
"""

from __future__ import annotations

import argparse
import statistics
import time

import ctdistill
from ctdistill.data.audit import audit_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a collection ctdistill reads (folder tree, numpy layout, DICOM)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up (default 3)")
    args = parser.parse_args()
    audit_path(args.data)  # warm: the decode cache
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        audit_path(args.data)
        times.append(time.perf_counter() - start)
    print(f"{ctdistill.__file__}\n{args.data}: median {statistics.median(times):.2f} s "
          f"{[round(t, 2) for t in times]}")


if __name__ == "__main__":
    main()
