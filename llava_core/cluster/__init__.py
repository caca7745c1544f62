"""``llava-core cluster setup`` and ``llava-core cluster check``: a SLURM profile for this cluster.

``detect`` asks SLURM what it offers, ``choose`` picks the profile's settings from that (asking
only what is ambiguous), ``profile`` renders and writes the profile where Snakemake finds a bare
``--profile slurm``, and ``doctor`` tests it with real jobs (``submit`` runs them, ``probe`` is
the script they run, ``fit`` compares each stage's resources with the partition). ``commands``
registers both commands with the CLI and imports the rest only when one of them runs, so a
pipeline job (which builds the same parser) imports nothing of this package but ``commands``.
"""
