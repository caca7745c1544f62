"""The code digest of a stage: the source it runs, found from the import graph.

A stage's entry point is a function (``llava_core.cli:cmd_finetune``). Inside the entry's own
module only what the function reaches counts: the top-level functions, classes and assignments
it names (transitively) and the imports they use, so editing one CLI command does not rerun
every stage. Every ``llava_core`` module imported from there counts whole, with all of its own
imports, top-level or inside functions (a lazy import still runs), transitively, together with
the ``__init__`` of each package on the way. Modules outside ``llava_core`` are the
environment's business (their versions are recorded in MLflow), not the digest's.

Plumbing (``plumbing.py``: MLflow tracking, file writing, config validation, the plan, CLI
handling, the chat transport) is left out, together with what only it imports: it cannot change
what a stage computes, so editing it reruns nothing.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "llava_core"


@dataclass(frozen=True)
class CodeDigest:
    """A stage's code digest and what it covers."""

    digest: str
    entries: tuple[str, ...]  # module:function, of which only the reachable part counts
    modules: tuple[str, ...]  # whole modules, sorted
    files: tuple[str, ...]  # other files (config files the stage reads)


class CodeGraph:
    """The import graph of the ``llava_core`` package in ``package_dir`` (parsed once per file)."""

    def __init__(self, package_dir: Path | None = None, plumbing: Iterable[str] | None = None,
                 plumbing_functions: dict[str, tuple[str, ...]] | None = None):
        from llava_core.plan.plumbing import PLUMBING_FUNCTIONS, PLUMBING_MODULES

        self.package_dir = Path(package_dir or Path(__file__).resolve().parents[1])
        self.plumbing = frozenset(PLUMBING_MODULES if plumbing is None else plumbing)
        self.plumbing_functions = dict(PLUMBING_FUNCTIONS if plumbing_functions is None else plumbing_functions)
        self._trees: dict[Path, tuple[ast.Module, str]] = {}
        self._imports: dict[str, set[str]] = {}
        self._paths: dict[str, Path | None] = {}

    def edited(self, path: Path) -> CodeGraph:
        """A graph of the same package after ``path`` changed (the other files' parses are reused)."""
        graph = CodeGraph(self.package_dir, self.plumbing, self.plumbing_functions)
        graph._trees = {p: t for p, t in self._trees.items() if p != Path(path)}
        graph._paths = dict(self._paths)
        return graph

    # -- modules ------------------------------------------------------------------------------
    def module_path(self, module: str) -> Path | None:
        """The file of a ``llava_core`` module (a package's ``__init__.py``), or None."""
        if module not in self._paths:
            self._paths[module] = None
            if module == PACKAGE or module.startswith(PACKAGE + "."):
                rel = Path(*module.split(".")[1:])
                for cand in (self.package_dir / rel / "__init__.py", (self.package_dir / rel).with_suffix(".py")):
                    if cand.is_file():
                        self._paths[module] = cand
                        break
        return self._paths[module]

    def _parse(self, path: Path) -> tuple[ast.Module, str]:
        if path not in self._trees:
            text = path.read_text(encoding="utf-8")
            self._trees[path] = (ast.parse(text, filename=str(path)), text)
        return self._trees[path]

    def _imported(self, nodes: Iterable[ast.AST], current: str) -> set[str]:
        """``llava_core`` modules named by the import statements among ``nodes`` (at any depth)."""
        found: set[str] = set()
        is_package = self.module_path(current).name == "__init__.py"
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    names = [a.name for a in sub.names]
                elif isinstance(sub, ast.ImportFrom):
                    base = sub.module or ""
                    if sub.level:  # relative: against the current package
                        parts = current.split(".")
                        keep = len(parts) - sub.level + (1 if is_package else 0)
                        base = ".".join([*parts[:keep], *([base] if base else [])])
                    # ``from pkg import name``: name may be a submodule
                    names = [base, *(f"{base}.{a.name}" for a in sub.names)]
                else:
                    continue
                for name in names:
                    found.update(m for m in _with_parents(name) if self.module_path(m) is not None)
        return found

    def module_imports(self, module: str) -> set[str]:
        """The ``llava_core`` modules ``module`` imports anywhere in its source."""
        if module not in self._imports:
            tree, _ = self._parse(self.module_path(module))
            self._imports[module] = self._imported(tree.body, module)
        return self._imports[module]

    def closure(self, roots: Iterable[str]) -> set[str]:
        """Every ``llava_core`` module the ``roots`` import, directly or not (the roots included),
        plumbing left out and not followed."""
        todo = [m for r in roots for m in _with_parents(r) if self.module_path(m) is not None]
        seen: set[str] = set()
        while todo:
            mod = todo.pop()
            if mod not in seen and mod not in self.plumbing:
                seen.add(mod)
                todo.extend(self.module_imports(mod) - seen)
        return seen

    # -- entry functions ----------------------------------------------------------------------
    def entry_part(self, entry: str) -> tuple[str, set[str]]:
        """The source that ``module:function`` reaches in its own module, and the modules it imports
        (those its reachable statements import, and the module's top-level imports)."""
        module, _, func = entry.partition(":")
        path = self.module_path(module)
        if path is None:
            raise ValueError(f"entry {entry!r}: no module {module!r} in {self.package_dir}")
        tree, text = self._parse(path)
        stmts = _reachable(tree, func, entry, skip=self.plumbing_functions.get(module, ()))
        lines = text.splitlines()
        # Whole lines of each statement, from its first decorator to its last line.
        source = "\n".join("\n".join(lines[min([s.lineno, *(d.lineno for d in getattr(s, "decorator_list", []))]) - 1:
                                           s.end_lineno]) for s in stmts)
        # Importing the entry's module runs its top-level imports, whether the entry uses them or not.
        top_imports = [st for st in tree.body if isinstance(st, (ast.Import, ast.ImportFrom))]
        return source, self._imported([*stmts, *top_imports], module) | set(_with_parents(module)[:-1])

    def digest(self, entries: Iterable[str], modules: Iterable[str] = (), files: Iterable[Path] = ()) -> CodeDigest:
        """Digest of entry functions (``module:function``), whole ``modules`` and other ``files``.

        An entry's module counts only through what the entry reaches, unless some module in the
        closure imports it, in which case it counts whole like any other.
        """
        entries = tuple(sorted(set(entries)))
        h = hashlib.sha256()
        roots = set(modules)
        for entry in entries:
            source, imports = self.entry_part(entry)
            h.update(f"entry {entry}\n{source}\n".encode())
            roots |= imports
        whole = tuple(sorted(self.closure(roots)))
        for mod in whole:
            h.update(f"module {mod}\n".encode())
            h.update(self._parse(self.module_path(mod))[1].encode())
        paths = tuple(sorted(str(p) for p in files))
        for p in paths:
            h.update(f"file {Path(p).name}\n".encode())
            h.update(Path(p).read_bytes() if Path(p).is_file() else b"<missing>")
        return CodeDigest(h.hexdigest()[:16], entries, whole, paths)


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages' ``__init__``."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _top_level_names(tree: ast.Module) -> dict[str, ast.stmt]:
    """Top-level name -> the statement binding it (definitions, assignments, imports)."""
    out: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[stmt.name] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                out.update({n.id: stmt for n in ast.walk(t) if isinstance(n, ast.Name)})
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            out.update({(a.asname or a.name).split(".")[0]: stmt for a in stmt.names})
    return out


def _reachable(tree: ast.Module, func: str, entry: str, skip: Iterable[str] = ()) -> list[ast.stmt]:
    """The top-level statements of a module that function ``func`` reaches by name, in file order,
    not following the names in ``skip`` (plumbing functions)."""
    defs = {name: stmt for name, stmt in _top_level_names(tree).items() if name not in set(skip)}
    if func not in defs:
        raise ValueError(f"entry {entry!r}: no top-level {func!r} in its module")
    seen: dict[int, ast.stmt] = {}
    todo = [defs[func]]
    while todo:
        stmt = todo.pop()
        if id(stmt) in seen:
            continue
        seen[id(stmt)] = stmt
        if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
            todo.extend(defs[n.id] for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id in defs)
    return sorted(seen.values(), key=lambda s: s.lineno)


def code_digest(entries: Iterable[str], modules: Iterable[str] = (), files: Iterable[Path] = ()) -> CodeDigest:
    """:meth:`CodeGraph.digest` on the installed package."""
    return CodeGraph().digest(entries, modules, files)
