"""Variants: an experiment is a preset plus overrides; a sweep asks for many at once.

``experiments=tiny sweep="finetune.learning_rate=1e-3,2e-3 seed=1,2"`` is a grid over the axes
(Hydra's comma syntax per axis); a sweep can also be a YAML file under ``config/sweeps/`` with a
``grid:`` of axes and, optionally, ``zip:`` axes that vary together. ``overrides=`` applies to every
variant. Each variant gets a stable, readable name: its preset, then every override that changes
what it computes (``tiny+finetune.learning_rate=1e-3+seed=1``), with a short digest where the name
would get long or holds characters a folder name should not. The separator is ``+``, not a comma:
Snakemake hands a cluster job its wildcards as ``rule:name=value,name=value`` and splits them on
commas (snakemake#2366), so a comma in a wildcard value breaks every SLURM job of that variant.
A preset without such overrides keeps its own name (``tiny``), and so today's folder (``results/tiny``).

Variants that differ only in their seeds form a *group* (the name without the seed overrides): the
report shows a group's mean, standard deviation and n per benchmark.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

#: The keys that set seeds: variants differing only in these are one group.
SEED_KEYS = ("seed", "pretrain.seed", "finetune.seed")
#: Keys that say how or where a job runs, not what it computes: never part of a variant's name.
NOT_IN_NAME = (re.compile(r"^tracking(\..*)?$"), re.compile(r"^data\.(mirror|base_url|disk_gb)$"),
               re.compile(r"(^|\.)resources\.(cpus|mem_mb|runtime)$"), re.compile(r"(^|\.)workers$"),
               re.compile(r"^data\.instruct\.generate\.teacher\.(api_key_env|concurrency|timeout_s|max_retries|"
                          r"backoff_s|usd_per_mtok_prompt|usd_per_mtok_completion)$"))
#: Folder names the results folder uses for other things: no variant may take one.
RESERVED = ("data", "stages", "logs", "benchmarks", "overrides", ".jobs", "report.md", "mlflow.db")
MAX_NAME = 160
#: Between the preset and each override in a variant's name (and a dataset folder's name and id).
SEP = "+"
_SAFE = re.compile(r"^[A-Za-z0-9._=-]+$")  # no SEP: a value holding it would blur the parts


@dataclass(frozen=True)
class Variant:
    """One configuration to run: a preset, its overrides (``overrides=`` then the sweep's), the sweep
    axes that made it (``key -> value``, as given) and the sweep it belongs to."""

    preset: str
    overrides: tuple[str, ...]
    axes: tuple[tuple[str, str], ...] = ()
    sweep: str = ""
    name: str = ""
    group: str = ""
    named_by: tuple[str, ...] = field(default=(), compare=False)  # the overrides in the name


def split_axis_values(text: str) -> list[str]:
    """``1e-3,2e-3`` -> ``["1e-3", "2e-3"]``; commas inside brackets or quotes do not split
    (``[1,2],[3,4]`` is two values)."""
    out, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [v.strip() for v in out]


def _axis(token: str, where: str) -> tuple[str, list[str]]:
    key, sep, values = token.partition("=")
    if not sep or not key or not values:
        raise ValueError(f"{where}: {token!r} is not an axis; write KEY=V1,V2 (e.g. finetune.learning_rate=1e-3,2e-3)")
    vals = split_axis_values(values)
    if any(v == "" for v in vals):
        raise ValueError(f"{where}: axis {key!r} has an empty value in {values!r}")
    if len(set(vals)) != len(vals):
        raise ValueError(f"{where}: axis {key!r} repeats a value ({values!r})")
    return key.strip(), vals


def _yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def sweep_points(spec: str | None, sweeps_dir: Path) -> tuple[str, list[tuple[tuple[str, str], ...]]]:
    """The sweep's name and its points, each a tuple of ``(key, value)`` in axis order.

    ``spec``: empty (one point, no axes), the name of a file ``<sweeps_dir>/<name>.yaml`` (or a path
    to a YAML file), or whitespace-separated axes ``KEY=V1,V2``. A grid's points vary the last axis
    fastest; ``zip:`` axes of a file advance together, as one more axis of the grid.
    """
    spec = (spec or "").strip()
    if not spec:
        return "", [()]
    file = Path(spec) if spec.endswith((".yaml", ".yml")) else sweeps_dir / f"{spec}.yaml"
    if file.is_file():
        return file.stem, _file_points(file)
    if "=" not in spec:
        known = sorted(p.stem for p in sweeps_dir.glob("*.yaml")) if sweeps_dir.is_dir() else []
        raise ValueError(f"sweep={spec!r}: no sweep file {file} and no KEY=V1,V2 axes"
                         + (f"; sweep files: {', '.join(known)}" if known else ""))
    axes = [_axis(tok, "sweep") for tok in spec.split()]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise ValueError(f"sweep={spec!r}: an axis is given twice")
    return spec, [tuple(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in axes))]


def _file_points(file: Path) -> list[tuple[tuple[str, str], ...]]:
    import yaml

    doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    unknown = set(doc) - {"grid", "zip"}
    if unknown or not isinstance(doc.get("grid", {}), dict) or not isinstance(doc.get("zip", {}), dict):
        raise ValueError(f"{file}: a sweep file holds grid: {{key: [values]}} and optionally zip: {{key: [values]}}"
                         + (f" (unknown keys: {sorted(unknown)})" if unknown else ""))
    axes: list[list[tuple[tuple[str, str], ...]]] = []
    for key, values in (doc.get("grid") or {}).items():
        values = values if isinstance(values, list) else [values]
        if not values:
            raise ValueError(f"{file}: grid axis {key!r} has no values")
        axes.append([((str(key), _yaml_value(v)),) for v in values])
    zipped = doc.get("zip") or {}
    if zipped:
        lengths = {k: len(v) if isinstance(v, list) else 1 for k, v in zipped.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{file}: zip axes must have the same number of values, got {lengths}")
        n = next(iter(lengths.values()))
        cols = {k: v if isinstance(v, list) else [v] for k, v in zipped.items()}
        axes.append([tuple((str(k), _yaml_value(cols[k][i])) for k in cols) for i in range(n)])
    if not axes:
        raise ValueError(f"{file}: the sweep has no axes")
    points = [tuple(kv for part in combo for kv in part) for combo in itertools.product(*axes)]
    keys = [k for k, _ in points[0]]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{file}: an axis is given twice ({keys})")
    return points


def expand(presets: list[str], overrides: list[str], sweep: str | None, sweeps_dir: Path) -> list[Variant]:
    """Every (preset, sweep point) pair as a :class:`Variant` (unnamed: naming needs the composed
    configs, see :func:`name_variant`), presets in the order given, points in sweep order."""
    sweep_name, points = sweep_points(sweep, sweeps_dir)
    return [Variant(preset, (*overrides, *(f"{k}={v}" for k, v in point)), tuple(point), sweep_name)
            for preset in presets for point in points]


def override_key(override: str) -> str:
    """The dotted key an override sets: ``++finetune.lr=1`` -> ``finetune.lr``; ``~a.b`` -> ``a.b``."""
    return override.lstrip("+~").partition("=")[0].strip()


def _select(cfg: DictConfig, key: str):
    value = OmegaConf.select(cfg, key, default="<unset>")
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def naming_overrides(overrides: tuple[str, ...], cfg: DictConfig, preset_cfg: DictConfig) -> tuple[str, ...]:
    """The overrides that change what the variant computes: not a no-op against the preset (the key's
    value differs), not a setting of how or where it runs (:data:`NOT_IN_NAME`); the last one of a
    key wins; sorted by key, so the same settings give the same name in any order."""
    last: dict[str, str] = {}
    for o in overrides:
        last[override_key(o)] = o
    return tuple(o for key, o in sorted(last.items())
                 if not any(p.search(key) for p in NOT_IN_NAME) and _select(cfg, key) != _select(preset_cfg, key))


def short_key(key: str, keys: frozenset[str]) -> str:
    """The shortest dotted suffix of ``key`` that no other config key ends with:
    ``data.synthetic.n_pretrain`` -> ``n_pretrain``, but ``finetune.learning_rate`` stays (there is
    a ``pretrain.learning_rate``). A key the config does not have is kept whole."""
    if key not in keys:
        return key
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        suffix = ".".join(parts[i:])
        if sum(k == suffix or k.endswith("." + suffix) for k in keys) == 1:
            return suffix
    return key


def config_keys(cfg: DictConfig) -> frozenset[str]:
    """Every dotted key of a config (a list is one key)."""
    out: set[str] = set()

    def walk(node, prefix: str) -> None:
        for k, v in node.items():
            out.add(prefix + str(k))
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return frozenset(out)


def variant_name(preset: str, named_by: tuple[str, ...], keys: frozenset[str] = frozenset()) -> str:
    """``preset`` then ``+key=value`` per override, each key shortened to its shortest unambiguous
    suffix among ``keys`` (``tiny+n_eval=20+finetune.learning_rate=1e-3``); a short digest of all
    of them stands for the ones not safe in a folder name (a ``~key`` deletion, a URL) or past the
    length limit, which are left out, with their count (``tiny+n_eval=20+3-1a2b3c4d``)."""
    parts = []
    for o in named_by:
        key, _, value = o.lstrip("+").partition("=")
        parts.append(f"{short_key(key, keys)}={value}")
    name = SEP.join([preset, *parts])
    if all(_SAFE.match(p) for p in parts) and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256("\n".join(named_by).encode()).hexdigest()[:8]
    shown: list[str] = []
    for p in parts:
        if _SAFE.match(p) and len(SEP.join([preset, *shown, p])) <= MAX_NAME - 16:
            shown.append(p)
    rest = len(parts) - len(shown)
    return SEP.join([preset, *shown, f"{rest}-{digest}"])


def group_name(preset: str, named_by: tuple[str, ...], keys: frozenset[str] = frozenset()) -> str:
    """The variant's name without its seed overrides: the seeds of one configuration share it."""
    return variant_name(preset, tuple(o for o in named_by if override_key(o) not in SEED_KEYS), keys)


def name_variant(variant: Variant, cfg: DictConfig, preset_cfg: DictConfig,
                 keys: frozenset[str] | None = None) -> Variant:
    """``variant`` with its name and group, from its composed config and its preset's (``keys``:
    :func:`config_keys` of the preset's, when the caller already has them)."""
    named_by = naming_overrides(variant.overrides, cfg, preset_cfg)
    if not named_by:
        keys = frozenset()
    elif keys is None:
        keys = config_keys(preset_cfg)
    name = variant_name(variant.preset, named_by, keys)
    if name in RESERVED:
        raise ValueError(f"variant name {name!r} is a folder the results folder uses for other things")
    return Variant(variant.preset, variant.overrides, variant.axes, variant.sweep, name,
                   group_name(variant.preset, named_by, keys), named_by)
