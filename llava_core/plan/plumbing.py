"""Plumbing: code that moves, records or checks what a stage computes, and never decides it.

A stage's code digest (``code_digest.py``) is a rerun trigger: it should change when the code that
determines the stage's outputs changes, and only then. Renaming an MLflow metric or rewording an
error message must not retrain a 7B model. So the digest leaves out the modules and functions
listed here (and does not follow their imports), each with the reason it cannot change a result.

What keeps the list honest (``tests/test_plan.py``): a plumbing module may import only other
plumbing, the config composition (whose effect is the resolved config, digested separately), the
benchmark kits (plain declarations) and the few result-code imports listed in
:data:`ALLOWED_RESULT_IMPORTS` with the reason each only checks input. A plumbing module that starts
to import data, model, training, evaluation or preparation code fails the test: it would then be
computing something a stage writes, and must leave this list.

A result-code edit that you know changes no output can be accepted without a rerun: run the same
``snakemake`` command with ``--touch`` once (README, "Accepting a neutral edit").
"""

from __future__ import annotations

#: Whole modules, by name, and why each is plumbing.
PLUMBING_MODULES: dict[str, str] = {
    "llava_core": "the package's version string, recorded in MLflow",
    "llava_core.io": "atomic file writing, JSON and JSON-lines reading and writing, checksums, FormatError "
                     "messages: how results are stored, not what they are",
    "llava_core.exit_codes": "the process exit statuses",
    "llava_core.tracking": "MLflow: runs, params, metrics, artifacts and the journal of calls a dead server missed",
    "llava_core.train.dataset_input": "records a training stage's filtered set as its MLflow dataset input",
    "llava_core.train.distributed": "how a multi-process stage ends (closing the process group) and the launcher's "
                                    "check that its outputs are complete",
    "llava_core.config.validate": "config checks and their error messages: they raise or pass, they return nothing",
    "llava_core.chat_client": "the judge's and the teacher's HTTP transport: request, retries and backoff, the reply "
                              "cache, token counts (the prompts and the parsing of replies stay covered)",
    "llava_core.plan": "the plan package",
    "llava_core.plan.build": "the plan: digests, paths and resources for the workflow",
    "llava_core.plan.code_digest": "the code digests themselves",
    "llava_core.plan.layout": "where each stage's outputs go (paths, not contents)",
    "llava_core.plan.plumbing": "this list",
    "llava_core.plan.stage": "the typed name of a stage",
    "llava_core.plan.variants": "variants, sweeps and seed groups: what a configuration is called and which "
                                "configurations are asked for, not what any of them computes",
    "llava_core.plan.inventory": "lists and deletes result folders (`llava-core runs`, `gc`)",
}

#: Functions of an entry module that are plumbing: a stage's digest leaves them (and what only they
#: import) out of the entry's reachable part.
PLUMBING_FUNCTIONS: dict[str, tuple[str, ...]] = {
    # CLI handling: compose the config from the command line (its result is digested as the config
    # digest), write the resolved config beside the outputs, set up logging, open the MLflow runs.
    "llava_core.cli": ("_setup_logging", "_load", "_write_resolved", "_parent_config", "_run", "_exp_dir",
                       "_record_imports"),
}

#: What a plumbing module may import besides other plumbing: config composition and the schema
#: (their effect is the resolved config, which has its own digest) and the kits (declarations).
ALLOWED_PREFIXES = ("llava_core.config", "llava_core.evalkit")

#: Result code a plumbing module imports only to check input, by (plumbing module, imported module).
ALLOWED_RESULT_IMPORTS: dict[tuple[str, str], str] = {
    ("llava_core.config.validate", "llava_core.prepare"): "the prepare package, on the way to its sources module",
    ("llava_core.config.validate", "llava_core.prepare.sources"): "runs the downloader's own checks on the declared "
                                                                  "sources before any job starts",
    ("llava_core.config.validate", "llava_core.prepare.instruct"): "the instruct package, on the way to its prompts",
    ("llava_core.config.validate", "llava_core.prepare.instruct.prompts"): "the instruction kinds a config may name",
}


def is_plumbing(module: str) -> bool:
    """Whether ``module`` is listed as plumbing."""
    return module in PLUMBING_MODULES
