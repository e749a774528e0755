"""Designs: a struct of arrays, one column per design parameter, ``n`` design points.

The model never loops over design points; it reads these columns as arrays of shape ``(n,)``.
Categorical parameters (process node, HBM generation) are integer codes into the technology
tables' id lists, so the whole struct stays numeric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import make_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from dse.catalog.chips import Chip
from dse.catalog.technology import Technology, load_technology
from dse.parameters import CATEGORICAL, FLOPS_GROUP, NAMES, PARAMETERS, chip_values, group_member

FloatArray = NDArray[np.float64]

__all__ = ["CATEGORICAL", "Designs", "FloatArray", "chip_columns", "from_chips"]

if TYPE_CHECKING:

    class _Columns:
        def __init__(self, **columns: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...  # one array per declared parameter

else:
    _Columns = make_dataclass(
        "_Columns", [(p.name, np.ndarray) for p in PARAMETERS], frozen=True, eq=False
    )
    _Columns.__module__ = __name__


class Designs(_Columns):
    """``n`` accelerator designs on their clusters, each field an array of shape ``(n,)``.

    One field per declaration of :data:`dse.parameters.PARAMETERS`, in the same order
    (``designs.<name>``); categoricals are ``int64`` codes, the rest ``float64``.

    Per-package quantities count the whole package (all dies). ``unit_price_usd`` is an explicit
    price (a space's or lever's); NaN, the usual case, prices the design at its modeled unit cost
    times ``price_markup``, its vendor's (NaN: the default markup; docs/model.md §3.2).
    """

    def __len__(self) -> int:
        return int(getattr(self, PARAMETERS[0].name).shape[0])

    @classmethod
    def names(cls) -> list[str]:
        """Column names in order."""
        return list(NAMES)

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (views, not copies)."""
        return {name: getattr(self, name) for name in self.names()}

    def flops_per_cycle(self, fmt: str) -> FloatArray:
        """Dense FLOPs per cycle per unit in number format ``fmt``, shape ``(n,)``."""
        column: FloatArray = getattr(self, group_member(FLOPS_GROUP, fmt).name)
        return column

    def replace(self, **changes: np.ndarray | float) -> Designs:
        """A copy with some columns replaced (scalars broadcast to ``(n,)``)."""
        values: dict[str, Any] = self.columns()
        n = len(self)
        for key, value in changes.items():
            if key not in values:
                raise KeyError(key)
            dtype = values[key].dtype
            values[key] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
        return Designs(**values)

    def take(self, index: np.ndarray | slice) -> Designs:
        """The designs at ``index`` (an index array, boolean mask or slice)."""
        return Designs(**{name: column[index] for name, column in self.columns().items()})

    @classmethod
    def from_columns(cls, columns: Mapping[str, Iterable[float] | np.ndarray]) -> Designs:
        """Build from a full mapping of column name → values (all the same length)."""
        missing = set(cls.names()) - set(columns)
        if missing:
            raise KeyError(f"missing design columns: {sorted(missing)}")
        out: dict[str, Any] = {}
        for name in cls.names():
            dtype = np.int64 if name in CATEGORICAL else np.float64
            out[name] = np.asarray(columns[name], dtype=dtype).reshape(-1)
        return cls(**out)

    @classmethod
    def concat(cls, parts: Sequence[Designs]) -> Designs:
        """Stack several design sets end to end."""
        return cls(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.names()}
        )


def chip_columns(
    chip: Chip, technology: Technology | None = None, *, with_markup: bool = True
) -> dict[str, float]:
    """One chip's design parameters as a column → value mapping (cluster size excluded); see
    :func:`dse.parameters.chip_values`.

    The price is modeled (``unit_price_usd`` NaN) at the vendor's markup (dse/pricing.py);
    ``with_markup=False`` leaves the markup NaN (used to compute the markups themselves).
    """
    return chip_values(chip, technology, with_markup=with_markup)


def from_chips(
    chips: Sequence[Chip], num_chips: float | Sequence[float] = 1.0, *, with_markup: bool = True
) -> Designs:
    """Designs for catalog chips, one point per chip, on clusters of ``num_chips``."""
    technology = load_technology()
    rows = [chip_columns(chip, technology, with_markup=with_markup) for chip in chips]
    columns: dict[str, list[float]] = {name: [row[name] for row in rows] for name in rows[0]}
    counts = np.broadcast_to(np.asarray(num_chips, dtype=np.float64), (len(chips),))
    columns["num_chips"] = list(counts)
    return Designs.from_columns(columns)
