"""One declaration per design parameter: name, unit, kind, what 0 means, categorical table.

Everything that handles parameters generically reads these declarations instead of naming
parameters: which columns are whole numbers or categorical codes (:class:`~dse.designs.Designs`,
results files), how a catalog chip gives its value (:func:`chip_values`), what a space may vary
and which values it accepts (:mod:`dse.space`), which ids a categorical takes (:func:`choices`)
and what a lever may target. A categorical parameter is stored as an integer code into the
technology table it names (``nodes``, ``memories``), whatever the parameter.

Adding a parameter is a declaration here, its column in :class:`~dse.designs.Designs` (checked
against this list by the tests), its key in the chip schema when chips carry it, and the
physics that reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dse.catalog.chips import Chip
    from dse.catalog.technology import Technology

Kind = Literal["int", "float", "category"]


@dataclass(frozen=True)
class Parameter:
    """A design parameter.

    ``kind`` is ``"int"`` (whole numbers), ``"float"`` or ``"category"`` (an id from the
    technology table ``table``, stored as its index). Numbers lie in :meth:`bounds`; where
    ``zero_allowed``, 0 is allowed too. ``from_chip`` gives a catalog chip's value (default: the chip's attribute
    of the same name; it is given the chip and the technology tables; None for parameters chips
    do not carry, such as the cluster size).
    ``in_results`` is False for a parameter whose results column is a metric of the same name.
    ``implies`` (categoricals only) maps other parameters to the attribute of the chosen table
    entry that gives their value where a space neither varies nor fixes them (an HBM generation
    brings its pin rate and stack capacity). ``shown`` is False for a parameter that a chip's
    summary (``dse chips show``) presents through a derived figure instead. ``derived`` marks a
    value a catalog chip gets through the silicon model from its other parameters (its
    ``from_chip`` evaluates the chip); while it is being derived the chip carries 1.0.
    """

    name: str
    unit: str
    kind: Kind
    description: str
    zero_allowed: bool = False
    table: str | None = None
    from_chip: Callable[[Chip, Technology], float | str] | None = None
    chip_carries: bool = True
    in_results: bool = True
    implies: tuple[tuple[str, str], ...] = ()
    shown: bool = True
    derived: bool = False

    @property
    def categorical(self) -> bool:
        return self.kind == "category"

    @property
    def whole(self) -> bool:
        return self.kind == "int"

    def bounds(self) -> tuple[float, float]:
        """The physical range (inclusive) of a number (``dse.catalog.chips.BOUNDS``); a
        number format's FLOPs per cycle may also be exactly 0 (the chip lacks the format)."""
        from dse.catalog.chips import BOUNDS

        if self.name.endswith("_flops_per_cycle_per_unit"):
            return BOUNDS["flops_per_cycle_per_unit"]
        return BOUNDS[self.name]

    def rule(self) -> str:
        """The rule a value obeys, in words (``"a whole number >= 1 and <= 16"``)."""
        from dse.catalog._schema import shown_number

        low, high = self.bounds()
        number = "a whole number" if self.whole else "a number"
        zero = ", or 0" if self.zero_allowed and low > 0 else ""
        return f"{number} >= {shown_number(low)} and <= {shown_number(high)}{zero}"

    def chip_value(self, chip: Chip, technology: Technology | None = None) -> float | str:
        """The value of this parameter for a catalog chip (a category by its id)."""
        if self.from_chip is not None:
            from dse.catalog.technology import load_technology

            return self.from_chip(chip, technology or load_technology())
        value: float | str = getattr(chip, self.name)
        return value


def _flops(fmt: str) -> Parameter:
    return Parameter(
        f"{fmt}_flops_per_cycle_per_unit",
        "FLOP/cycle",
        "float",
        f"dense {fmt} FLOPs per clock cycle per compute unit (0: the format is not supported)",
        zero_allowed=True,
        from_chip=lambda chip, _: chip.flops_per_cycle(fmt),
        shown=False,  # as peak_tflop_s per format
    )


def _modeled_price(chip: Chip, technology: Technology) -> float:
    return float("nan")  # catalog chips are priced as unit cost x markup (docs/model.md §3.2)


def _gemm_efficiency_scale(chip: Chip, technology: Technology) -> float:
    return technology.family(chip.family).gemm_efficiency_scale


def _energy_per_flop_scale(chip: Chip, technology: Technology) -> float:
    from dse.model.silicon import tdp_energy_scale

    return float(tdp_energy_scale(chip, technology))


def _vendor_markup(chip: Chip, technology: Technology) -> float:
    from dse.pricing import vendor_markups

    return vendor_markups().get(chip.vendor, float("nan"))


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("node", "", "category", "process node (technology table nodes)", table="nodes"),
    Parameter("dies_per_package", "dies", "int", "compute dies in the package"),
    Parameter("compute_units", "units", "int", "enabled compute units (SMs, cores) per package"),
    Parameter(
        "spare_units",
        "units",
        "int",
        "physical compute units beyond the enabled ones, harvested for yield",
        zero_allowed=True,
        from_chip=lambda chip, _: chip.compute_units_physical - chip.compute_units,
    ),
    Parameter("clock_ghz", "GHz", "float", "sustained compute clock"),
    Parameter("sram_mb", "MB", "float", "on-chip SRAM per package"),
    Parameter("tdp_w", "W", "float", "thermal design power of the package"),
    _flops("bf16"),
    _flops("fp16"),
    _flops("fp8"),
    _flops("fp4"),
    Parameter(
        "hbm_generation",
        "",
        "category",
        "HBM generation (technology table memories)",
        table="memories",
        implies=(
            ("hbm_pin_rate_gbps", "pin_rate_gbps"),
            ("hbm_stack_capacity_gb", "stack_capacity_gb"),
        ),
    ),
    Parameter("hbm_stacks", "stacks", "int", "HBM stacks per package"),
    Parameter("hbm_pin_rate_gbps", "Gb/s", "float", "HBM data rate per pin"),
    Parameter("hbm_stack_capacity_gb", "GB", "float", "capacity of one HBM stack"),
    Parameter("scale_up_bandwidth_gb_s", "GB/s", "float", "scale-up link bandwidth per chip"),
    Parameter("scale_up_domain", "chips", "int", "chips in one scale-up (NVLink-like) domain"),
    Parameter("scale_out_bandwidth_gb_s", "GB/s", "float", "scale-out network bandwidth per chip"),
    Parameter("num_chips", "chips", "int", "chips in the training cluster", chip_carries=False),
    Parameter(
        "unit_price_usd",
        "USD",
        "float",
        "explicit price of one chip (NaN, the usual case: unit cost x price_markup)",
        from_chip=_modeled_price,
        in_results=False,
    ),
    Parameter(
        "gemm_efficiency_scale",
        "",
        "float",
        "GEMM efficiency of the chip's architecture family relative to the reference "
        "(chips/technology/families.toml)",
        from_chip=_gemm_efficiency_scale,
    ),
    Parameter(
        "energy_per_flop_scale",
        "",
        "float",
        "tensor-unit energy per FLOP relative to the process node's (chips/technology/nodes.toml);"
        " a catalog chip's makes its datasheet dense peak draw exactly its TDP (docs/model.md §1.7)",
        from_chip=_energy_per_flop_scale,
        derived=True,
    ),
    Parameter(
        "price_markup",
        "",
        "float",
        "price over modeled unit cost, the vendor's (dse/pricing.py; NaN: the default markup)",
        from_chip=_vendor_markup,
    ),
)
"""Every design parameter, in the column order of :class:`~dse.designs.Designs`."""

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
CATEGORICAL: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.categorical)
"""Parameters stored as integer codes into a technology table."""
INTEGER: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.whole)
"""Parameters that take whole numbers."""
ZERO_ALLOWED: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.zero_allowed)
"""Parameters that may be 0; all other numbers are > 0."""
RESULTS: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.in_results)
"""Design parameter columns of a results file."""


def choices(name: str, technology: Technology | None = None) -> list[str]:
    """The ids a categorical parameter takes, in code order (its technology table's keys)."""
    from dse.catalog.technology import load_technology

    table = BY_NAME[name].table
    if table is None:
        raise KeyError(f"{name} is not a categorical parameter")
    return list(getattr(technology or load_technology(), table))


def implied(name: str, parameter: str, technology: Technology | None = None) -> list[float]:
    """Values of ``parameter`` implied by each id of the categorical ``name``, in code order."""
    from dse.catalog.technology import load_technology

    declared = BY_NAME[name]
    attribute = dict(declared.implies)[parameter]
    table = getattr(technology or load_technology(), declared.table or "")
    return [float(getattr(entry, attribute)) for entry in table.values()]


def chip_values(
    chip: Chip,
    technology: Technology | None = None,
    *,
    with_markup: bool = True,
    derived: bool = True,
) -> dict[str, float]:
    """A catalog chip's design parameters as column → value (categories as codes); the
    parameters chips do not carry (the cluster size) are left out. ``with_markup=False``
    leaves ``price_markup`` NaN (dse/pricing.py computes the markups from such rows);
    ``derived=False`` gives the derived parameters 1.0 (used to derive them)."""
    from dse.catalog.technology import load_technology

    technology = technology or load_technology()
    row: dict[str, float] = {}
    for p in PARAMETERS:
        if not p.chip_carries:
            continue
        if p.name == "price_markup" and not with_markup:
            row[p.name] = float("nan")
            continue
        if p.derived and not derived:
            row[p.name] = 1.0
            continue
        value = p.chip_value(chip, technology)
        row[p.name] = float(
            choices(p.name, technology).index(str(value)) if p.categorical else value
        )
    return row
