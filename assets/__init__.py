"""Assets: ``channel_files`` (one partition per channel) and ``fetcher_code`` (one per site)."""

from assets.channel_files import channel_files
from assets.channel_records import channel_records
from assets.fetcher_code import fetcher_code

__all__ = ["channel_files", "channel_records", "fetcher_code"]
