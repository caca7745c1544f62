"""Data preparation: declared sources, a verifying downloader with a lock file, and record filters."""

from llava_core.prepare.download import ChecksumError, DownloadError, LockMismatchError, download_sources
from llava_core.prepare.filter import filter_records, write_manifest
from llava_core.prepare.sources import Source, resolve_url, sources_from_config

__all__ = [
    "ChecksumError",
    "DownloadError",
    "LockMismatchError",
    "Source",
    "download_sources",
    "filter_records",
    "resolve_url",
    "sources_from_config",
    "write_manifest",
]
