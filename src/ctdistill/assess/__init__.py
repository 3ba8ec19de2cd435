"""Assessment: metrics, paired comparisons, the run's tables, the verdict and latency; computes
numbers, never formats them (report/ does).
"""
