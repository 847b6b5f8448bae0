"""Assets: ``channel_files`` (one partition per channel)."""

from assets.channel_files import channel_files

__all__ = ["channel_files"]
