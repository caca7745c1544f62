"""llava_core: the LLaVA-1.5 reproduction package behind the `llava-core` CLI."""

__version__ = "0.1.0"
