"""Data preparation: declared sources, a verifying downloader with a lock file, and record filters.

Nothing is imported here: a stage's code digest follows imports, and importing one submodule
must not make a stage depend on all of them.
"""
