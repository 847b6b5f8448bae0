"""Records: files a channel fetched, read as records and loaded into ``unified_items``."""
