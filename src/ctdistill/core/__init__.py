"""Foundations every layer uses: the error types and exit codes, the names a configuration may
choose, reading configuration values, quiet library logs and progress bars."""
