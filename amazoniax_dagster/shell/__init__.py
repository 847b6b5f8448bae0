"""Dagster-only pieces shared by ``assets/`` and ``sensors/``: jobs, partitions, tags."""
