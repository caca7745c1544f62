"""The package's layers, read from its own import statements (top-level and inside functions).

- ``data/`` is the foundation: it imports no stage package (evaluate, prepare, train, model,
  synthetic), the clients or the tracking.
- The kits (``evalkit/``) are declarations: they import nothing but each other and ``io``.
- The benchmarks' code is pure Python: no torch, no transformers, no model or training code.
- Plumbing (``plan/plumbing.py``) imports only plumbing, the config composition and the kits, and the
  result-code imports listed there with their reason: a plumbing module that reached data, model,
  training, evaluation or preparation code could compute what a stage writes, and would then have
  to be covered by the stages' code digests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from llava_core.plan.code_digest import CodeGraph
from llava_core.plan.plumbing import (
    ALLOWED_PREFIXES,
    ALLOWED_RESULT_IMPORTS,
    PLUMBING_FUNCTIONS,
    PLUMBING_MODULES,
)

PACKAGE = Path(__file__).resolve().parents[1] / "llava_core"
GRAPH = CodeGraph(PACKAGE, plumbing=())  # plumbing not skipped: every import is read


def modules_under(package: str) -> list[str]:
    folder = PACKAGE / Path(*package.split(".")[1:])
    out = []
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out.append(".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts))
    return out


def third_party(module: str) -> set[str]:
    """Top-level names of the non-``llava_core`` modules ``module`` imports anywhere."""
    tree = ast.parse(GRAPH.module_path(module).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names - {"llava_core"}


def under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


STAGE_PACKAGES = ("llava_core.evaluate", "llava_core.prepare", "llava_core.train", "llava_core.model",
                  "llava_core.synthetic", "llava_core.cluster", "llava_core.chat_client", "llava_core.local_chat",
                  "llava_core.tracking", "llava_core.cli")


@pytest.mark.parametrize("module", modules_under("llava_core.data"))
def test_data_is_the_foundation(module):
    bad = sorted(m for m in GRAPH.module_imports(module) if under(m, *STAGE_PACKAGES))
    assert not bad, f"{module} imports {bad}: data/ must not import the layers built on it"


@pytest.mark.parametrize("module", modules_under("llava_core.evalkit"))
def test_kits_are_declarations(module):
    bad = sorted(m for m in GRAPH.module_imports(module) if not under(m, "llava_core.evalkit", "llava_core.io")
                 and m != "llava_core")
    assert not bad and third_party(module) <= {"__future__", "importlib", "math", "collections", "dataclasses",
                                               "functools", "pathlib", "typing"}, (module, bad, third_party(module))


@pytest.mark.parametrize("module", [m for m in modules_under("llava_core.evaluate.benchmarks")])
def test_benchmark_code_is_pure_python(module):
    assert not third_party(module) & {"torch", "transformers", "numpy", "PIL"}, module
    reached = GRAPH.closure([module])
    assert not {m for m in reached if under(m, "llava_core.model", "llava_core.train", "llava_core.evaluate.generate")}


@pytest.mark.parametrize("module", sorted(PLUMBING_MODULES))
def test_plumbing_reaches_no_result_code(module):
    assert GRAPH.module_path(module) is not None, f"{module} is listed as plumbing but does not exist"
    imported = GRAPH.module_imports(module)
    bad = sorted(m for m in imported if m not in PLUMBING_MODULES and not under(m, *ALLOWED_PREFIXES)
                 and (module, m) not in ALLOWED_RESULT_IMPORTS)
    assert not bad, f"plumbing module {module} imports result code {bad}: leave it out of plan/plumbing.py or move it"


def test_plumbing_functions_reach_no_result_code():
    for module, functions in PLUMBING_FUNCTIONS.items():
        for fn in functions:
            _, imported = CodeGraph(PACKAGE, plumbing=(), plumbing_functions={}).entry_part(f"{module}:{fn}")
            bad = sorted(m for m in imported if m not in PLUMBING_MODULES and not under(m, *ALLOWED_PREFIXES)
                         and m != module)
            assert not bad, (f"{module}:{fn}", bad)


def test_the_allowed_result_imports_are_still_needed():
    """An exception nobody uses any more is removed, not kept as a loophole."""
    for plumbing, imported in ALLOWED_RESULT_IMPORTS:
        assert imported in GRAPH.module_imports(plumbing), (plumbing, imported)
