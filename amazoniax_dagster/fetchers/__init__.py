"""Site fetchers for html/api channels: every kind turns a channel config into a folder of files.

Kinds, safest first: a recipe (declarative HTTP spec run by our engine), a browser recipe
(declarative Playwright steps), a Python fetcher (sandboxed subprocess). The sync engine then
hashes, de-duplicates and uploads that folder like any other source (``FolderSource``).
"""
