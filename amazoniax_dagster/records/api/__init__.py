"""The read API: health, the records of ``unified_items``, per-channel stats, metrics."""
