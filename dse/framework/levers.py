"""Levers: named transformations of the model's inputs, read from a TOML file (``dse/levers.toml``).

A levers file holds one table per lever, applied in file order. Each lever has a ``name``, a
``kind`` (evolutionary or revolutionary), the paper's ``nominal_factor`` (the cost reduction it
aims for), the ``assumption`` under which the lever holds, and a list of ``[[<id>.change]]``
tables. A change is one operation on one named target, with its ``source``:

==================  =====================================================================
target              what it names
==================  =====================================================================
``workload.F``      a workload field: ``tokens``, ``active_params``, ``global_batch_tokens``,
                    ``precision``, ``attention_precision`` (``bf16`` or ``fp8``: FP8
                    dot-product attention), ``training_algorithm`` (an id of ``dse/algorithms.toml``),
                    or ``moe_k`` (K = total / active parameters; see
                    :mod:`dse.framework.moe`)
``settings.F``      any model default of ``dse/defaults.toml`` (``goodput``, ``dp_overlap``…)
``design.F``        any design column (``node``, ``hbm_generation``, ``unit_price_usd``…)
``technology.T.F``  a number of every entry of the technology table T (``node`` or ``memory``),
                    e.g. ``technology.node.energy_bf16_pj_per_flop``
==================  =====================================================================

======================  =========================================================================
op                      effect
======================  =========================================================================
``set``                 replace by ``value`` (a number, a string such as ``"fp8"`` or ``"n3"``, a
                        boolean)
``scale``               multiply by ``value`` (> 0)
``at_most``             cap at ``value``
``next``                categorical design columns: the ``value``-th next entry (default 1) of the
                        technology table (the next process node or HBM generation)
``rated``               a design column that a categorical implies (its declaration's
                        ``implies``): the rated value of the design's entry (an HBM generation's
                        pin rate or stack capacity)
======================  =========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeGuard

import numpy as np

from dse.catalog._schema import Field, Table, check
from dse.catalog.technology import Memory, Node, Technology, load_technology
from dse.catalog.workloads import (
    ATTENTION_PRECISIONS,
    PRECISIONS,
    Workload,
    training_algorithms,
    with_algorithm,
)
from dse.designs import CATEGORICAL, Designs
from dse.errors import InputError
from dse.files import read_toml
from dse.framework.moe import mixture_of_experts
from dse.framework.state import State
from dse.model.economics import unit_price
from dse.model.silicon import evaluate_silicon
from dse.parameters import by_table, choices, implied_by
from dse.settings import Settings, load_settings

LEVERS_PATH = Path(__file__).resolve().parents[1] / "levers.toml"
"""The shipped levers: the paper's evolutionary roadmap and revolutionary path."""

KINDS = ("evolutionary", "revolutionary")
OPS = ("set", "scale", "at_most", "next", "rated")
WORKLOAD_TARGETS = (
    "tokens",
    "active_params",
    "global_batch_tokens",
    "precision",
    "attention_precision",
    "moe_k",
    "training_algorithm",
)
TECHNOLOGY_TABLES: dict[str, type] = {"node": Node, "memory": Memory}
_TABLE_ATTRIBUTES = {"node": "nodes", "memory": "memories"}
"""A lever's technology table name → the :class:`~dse.catalog.technology.Technology` table."""
_NUMERIC_OPS = ("set", "scale", "at_most")

LEVER_SCHEMA = Table(
    {
        "name": Field("str"),
        "kind": Field("str", choices=KINDS),
        "nominal_factor": Field(positive=True),
        "assumption": Field("str"),
    }
)
CHANGE_SCHEMA = Table(
    {"target": Field("str"), "op": Field("str", choices=OPS), "source": Field("str")}
)


@dataclass(frozen=True)
class Change:
    """One operation on one target; ``value`` is None for ``rated``."""

    target: str
    op: str
    value: float | str | bool | None
    source: str

    def describe(self) -> str:
        """``target op value`` as a reader would write it."""
        return f"{self.target} {self.op}" + ("" if self.value is None else f" {self.value}")


@dataclass(frozen=True)
class Lever:
    """A named transformation of the model's inputs with the paper's nominal factor."""

    id: str
    name: str
    kind: str
    nominal_factor: float
    assumption: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Levers:
    """The levers of one file, in the order they apply; ``path`` names the file in errors."""

    path: Path
    levers: tuple[Lever, ...]

    def __iter__(self) -> Iterator[Lever]:
        return iter(self.levers)

    def __len__(self) -> int:
        return len(self.levers)

    def ids(self) -> list[str]:
        return [lever.id for lever in self.levers]


def load_levers(path: str | Path | None = None) -> Levers:
    """Read and validate a levers file (default: the shipped ``dse/levers.toml``)."""
    path = Path(path) if path is not None else LEVERS_PATH
    data = read_toml(path)
    if not data:
        raise InputError(path, "", "at least one lever table", "an empty file")
    levers = []
    for lever_id, body in data.items():
        if not isinstance(body, Mapping):
            raise InputError(path, lever_id, "a table (one lever)", body)
        body = dict(body)
        raw_changes = body.pop("change", None)
        values = check(body, LEVER_SCHEMA, path, lever_id)
        if not isinstance(raw_changes, list) or not raw_changes:
            raise InputError(
                path, f"{lever_id}.change", "one or more [[change]] tables", raw_changes
            )
        changes = tuple(
            _load_change(raw, path, f"{lever_id}.change[{i}]") for i, raw in enumerate(raw_changes)
        )
        levers.append(Lever(id=lever_id, changes=changes, **values))
    return Levers(path, tuple(levers))


def _load_change(raw: Any, path: Path, key: str) -> Change:
    if not isinstance(raw, Mapping):
        raise InputError(path, key, "a table with target, op, value and source", raw)
    raw = dict(raw)
    value = raw.pop("value", None)
    values = check(raw, CHANGE_SCHEMA, path, key)
    change = Change(values["target"], values["op"], value, values["source"])
    _check_change(change, path, key)
    return change


@dataclass(frozen=True)
class _Rule:
    """What a target accepts: its ops, the strings ``set`` may give, or a boolean."""

    ops: tuple[str, ...]
    choices: tuple[str, ...] = ()
    boolean: bool = False


def _rule(target: str) -> _Rule | None:
    """The rule of ``target``, or None when no such target exists."""
    space, _, name = target.partition(".")
    if space == "workload" and name in WORKLOAD_TARGETS:
        if name == "training_algorithm":
            return _Rule(("set",), choices=tuple(training_algorithms()))
        if name == "attention_precision":
            return _Rule(("set",), choices=ATTENTION_PRECISIONS)
        return _Rule(("set",), choices=PRECISIONS) if name == "precision" else _Rule(_NUMERIC_OPS)
    if space == "settings" and name in Settings.names():
        if isinstance(getattr(load_settings(), name), bool):
            return _Rule(("set",), boolean=True)
        return _Rule(_NUMERIC_OPS)
    if space == "design" and name in Designs.names():
        if name in CATEGORICAL:
            return _Rule(("set", "next"), choices=tuple(choices(name)))
        return _Rule(_NUMERIC_OPS + (("rated",) if implied_by(name) else ()))
    table, _, column = name.partition(".")
    if space == "technology" and column in _technology_numbers(table):
        return _Rule(("scale",))
    return None


def _technology_numbers(table: str) -> list[str]:
    """Numeric fields of a technology table's entries (``node`` or ``memory``)."""
    kind = TECHNOLOGY_TABLES.get(table)
    if kind is None:
        return []
    return [
        f.name
        for f in fields(kind)
        if f.type in ("float", "int", float, int) and not f.name.startswith("year")
    ]


def _check_change(change: Change, path: Path, key: str) -> None:
    """Target known, op allowed on it, value of the right kind; raises :class:`InputError`."""
    rule = _rule(change.target)
    if rule is None:
        raise InputError(
            path,
            f"{key}.target",
            f"workload.<{' | '.join(WORKLOAD_TARGETS)}>, settings.<a model default>, "
            "design.<a design column>, technology.node.<number> or technology.memory.<number>",
            change.target,
        )
    op, value = change.op, change.value
    if op not in rule.ops:
        raise InputError(path, f"{key}.op", f"one of {list(rule.ops)} for {change.target}", op)
    where = f"{key}.value"
    if op == "rated":
        if value is not None:
            raise InputError(path, where, "no value (rated takes the technology table's)", value)
    elif op == "next":
        if value is not None and not (
            _is_number(value) and float(value).is_integer() and float(value) >= 1
        ):
            raise InputError(path, where, "a whole number of steps >= 1 (default 1)", value)
    elif rule.choices:
        if value not in rule.choices:
            raise InputError(path, where, f"one of {list(rule.choices)}", value)
    elif rule.boolean:
        if not isinstance(value, bool):
            raise InputError(path, where, "true or false", value)
    elif not _is_number(value) or value < 0 or (op == "scale" and value == 0):
        raise InputError(path, where, "a number > 0" if op == "scale" else "a number >= 0", value)
    elif op == "set" and change.target.startswith("settings."):
        _settings_with(load_settings(), change.target.partition(".")[2], value, path, key)


def _need_op(op: str, allowed: tuple[str, ...], path: Path, key: str) -> None:
    if op not in allowed:
        raise InputError(path, f"{key}.op", f"one of {list(allowed)} for this target", op)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _settings_with(settings: Settings, name: str, value: Any, path: Path, key: str) -> Settings:
    try:
        return settings.with_overrides(source=str(path), **{name: value})
    except InputError as error:
        raise InputError(path, f"{key}.value", error.expected, error.given) from None


# ---- applying levers ----------------------------------------------------------------------


def apply_lever(state: State, lever: Lever, path: str | Path = "levers") -> tuple[State, list[str]]:
    """``state`` with every change of ``lever`` applied in order, and one line per change
    (``target: before -> after``)."""
    lines = []
    for i, change in enumerate(lever.changes):
        where = f"{lever.id}.change[{i}]"
        before = read_target(state, change.target)
        state = _apply(state, change, Path(path), where)
        lines.append(
            f"{change.target}: {_show(before)} -> {_show(read_target(state, change.target))}"
        )
    return state, lines


def read_target(state: State, target: str) -> object:
    """The current value of ``target`` in ``state`` (categorical design columns by id)."""
    space, _, name = target.partition(".")
    if space == "workload":
        return state.workload.moe_k if name == "moe_k" else getattr(state.workload, name)
    if space == "settings":
        return getattr(state.settings, name)
    if space == "design":
        value = getattr(state.designs, name)[0]
        if name in CATEGORICAL:
            return _category_ids(state, name)[int(value)]
        return float(value)
    if space != "technology":
        raise KeyError(target)
    # A technology target reads the entry the design uses (its node or HBM generation).
    table, _, column = name.partition(".")
    technology = state.technology or load_technology()
    attribute = _TABLE_ATTRIBUTES[table]
    code = int(getattr(state.designs, by_table(attribute).name)[0])
    entry: Any = list(getattr(technology, attribute).values())[code]
    return getattr(entry, column)


def _category_ids(state: State, name: str) -> list[str]:
    return choices(name, state.technology)


def _number(current: float, change: Change) -> float:
    value = float(change.value)  # type: ignore[arg-type]
    if change.op == "scale":
        return current * value
    if change.op == "at_most":
        return min(current, value)
    return value


def _apply(state: State, change: Change, path: Path, key: str) -> State:
    space, _, name = change.target.partition(".")
    if space == "workload":
        return replace(state, workload=_apply_workload(state.workload, change, name, path, key))
    if space == "settings":
        current = getattr(state.settings, name)
        value = change.value if isinstance(current, bool) else _number(current, change)
        return replace(state, settings=_settings_with(state.settings, name, value, path, key))
    if space == "design":
        return replace(state, designs=_apply_design(state, change, name, path, key))
    return replace(state, technology=_apply_technology(state, change, name))


def _apply_workload(w: Workload, change: Change, name: str, path: Path, key: str) -> Workload:
    if name in ("precision", "attention_precision"):
        return w.with_changes(**{name: change.value})
    if name == "training_algorithm":
        return with_algorithm(w, str(change.value))
    if name == "moe_k":
        return mixture_of_experts(w, _number(w.moe_k, change), source=f"{path}: {key}")
    value = _number(getattr(w, name), change)
    if value <= 0:
        raise InputError(path, f"{key}.value", f"a result > 0 for workload.{name}", value)
    if name == "active_params" and value > w.total_params:
        raise InputError(
            path, f"{key}.value", f"at most total_params ({w.total_params:.4g})", value
        )
    if name == "global_batch_tokens" and value < w.seq_len:
        raise InputError(path, f"{key}.value", f"at least seq_len ({w.seq_len})", value)
    return w.with_changes(**{name: value})


def _apply_design(state: State, change: Change, name: str, path: Path, key: str) -> Designs:
    designs = state.designs
    if name in CATEGORICAL:
        ids = _category_ids(state, name)
        code = int(getattr(designs, name)[0])
        if change.op == "set":
            code = ids.index(str(change.value))
        else:
            code += int(change.value or 1)
            if code >= len(ids):
                raise InputError(
                    path, key, f"a newer {name} than {ids[-1]} in the technology tables", ids[-1]
                )
        return designs.replace(**{name: code})
    rated = implied_by(name)
    if change.op == "rated" and rated is not None:
        categorical, attribute = rated
        code = int(getattr(designs, categorical.name)[0])
        entry = choices(categorical.name, state.technology)[code]
        table = getattr(state.technology or load_technology(), categorical.table or "")
        return designs.replace(**{name: float(getattr(table[entry], attribute))})
    current = float(getattr(designs, name)[0])
    if name == "unit_price_usd" and not math.isfinite(current):
        # A chip without a market price is priced at unit cost × markup: make that explicit first.
        silicon = evaluate_silicon(designs, state.technology)
        current = float(unit_price(designs, silicon, state.settings)[0])
    return designs.replace(**{name: np.float64(_number(current, change))})


def _apply_technology(state: State, change: Change, name: str) -> Technology:
    technology = state.technology or load_technology()
    table, _, column = name.partition(".")
    factor = float(change.value)  # type: ignore[arg-type]

    def scaled(entries: Mapping[str, Any]) -> MappingProxyType[str, Any]:
        return MappingProxyType(
            {k: replace(e, **{column: getattr(e, column) * factor}) for k, e in entries.items()}
        )

    attribute = _TABLE_ATTRIBUTES[table]
    changes: dict[str, Any] = {attribute: scaled(getattr(technology, attribute))}
    return replace(technology, **changes)


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
