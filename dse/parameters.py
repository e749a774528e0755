"""One declaration per design parameter: name, unit, kind, bounds, chip-file key, categorical table.

Everything that handles parameters generically reads these declarations instead of naming
parameters: the chip file schema and the :class:`~dse.catalog.chips.Chip` record
(:mod:`dse.catalog.chips`), the columns of :class:`~dse.designs.Designs` and of results files,
what a space may vary and which values it accepts (:mod:`dse.space`), which ids a categorical
takes (:func:`choices`), what a lever may target, ``dse chips show`` and the chip-key table of
docs/catalog.md (:func:`dse.catalog.chips.key_table`, checked by the tests). A categorical
parameter is stored as an integer code into the technology table it names (``nodes``,
``memories``), whatever the parameter.

Adding a parameter is a declaration here and the physics that reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from dse.catalog.chips import Chip
    from dse.catalog.technology import Technology

Kind = Literal["int", "float", "category"]

FORMATS: tuple[str, ...] = ("bf16", "fp16", "fp8", "fp4")
"""Number formats the model knows, widest first. ``fp16`` stands in for 16-bit training on chips
without bf16 (V100)."""

PER_DIE = "dies_per_package"
"""The parameter that ``per_die`` parameters are at least (one per die)."""

FLOPS_GROUP = "flops_per_cycle_per_unit"
"""The chip file's table of dense FLOPs per cycle per unit, keyed by number format."""

SECTIONS: tuple[str, ...] = ("architecture", "memory", "interconnect")
"""Tables of a chip file that hold design parameters, in file order."""


@dataclass(frozen=True)
class Parameter:
    """A design parameter.

    ``kind`` is ``"int"`` (whole numbers), ``"float"`` or ``"category"`` (an id from the
    technology table ``table``, stored as its index). Numbers lie in ``low``–``high`` (inclusive,
    in ``unit``: the physical range a chip file, a space's ``[fixed]`` values and its dimensions
    may hold; far beyond any chip built, well short of values that overflow the model); where
    ``zero_allowed``, 0 is allowed too.

    Chip files: ``section`` is the table of a chip file that gives the value (None: chip files do
    not; ``from_chip`` then gives a catalog chip's value, or the parameter is a cluster's, see
    ``chip_carries``). ``key`` is its key there when not ``name``: a dotted key
    (``group.member``) is an entry of a sub-table of numbers; a plain one is a file value that
    ``from_file`` turns into the parameter, given the value (None when absent) and the section's
    other values, raising ``ValueError(rule)`` when they disagree; ``key_bounds`` bounds that
    file value and ``key_default`` names the key of the section whose value it takes when absent. ``required`` is False for a key a file may omit (``default``, a categorical's
    ``implies`` or ``key_default`` then supplies it). ``per_die``: at least one per die. ``notes`` extend the
    description in docs/catalog.md.

    ``in_results`` is False for a parameter whose results column is a metric of the same name.
    ``implies`` (categoricals only) maps other parameters to the attribute of the chosen table
    entry that gives their value where a space neither varies nor fixes them (an HBM generation
    brings its pin rate and stack capacity). ``shown`` is False for a parameter that a chip's
    summary (``dse chips show``) presents through a derived figure instead; ``listed`` puts it
    in ``dse chips list``; ``label`` is its name on plot axes. ``derived`` marks a value a
    catalog chip gets through the silicon model from its other parameters (its ``from_chip``
    evaluates the chip); while it is being derived the chip carries 1.0. ``calibrated`` marks a
    value fitted on the published runs of the chip's family ([C]): a space that sets it
    describes a family no published run calibrated, whose intervals are those of a family left
    out (docs/model.md §4).
    """

    name: str
    unit: str
    kind: Kind
    description: str
    low: float = 0.0
    high: float = 0.0
    zero_allowed: bool = False
    table: str | None = None
    section: str | None = None
    key: str = ""
    required: bool = True
    default: float | str | None = None
    from_file: Callable[[Any, Mapping[str, Any]], float] | None = None
    key_bounds: tuple[float, float] | None = None
    key_default: str = ""
    per_die: bool = False
    notes: str = ""
    from_chip: Callable[[Chip, Technology], float | str] | None = None
    chip_carries: bool = True
    in_results: bool = True
    implies: tuple[tuple[str, str], ...] = ()
    shown: bool = True
    listed: bool = False
    label: str = ""
    derived: bool = False
    calibrated: bool = False

    @property
    def categorical(self) -> bool:
        return self.kind == "category"

    @property
    def whole(self) -> bool:
        return self.kind == "int"

    @property
    def file_key(self) -> str:
        """The key of this parameter in its chip file section (``name`` unless ``key``)."""
        return self.key or self.name

    @property
    def group(self) -> tuple[str, str] | None:
        """``(sub-table, entry)`` for a parameter given as an entry of a table of numbers."""
        table, dot, member = self.file_key.partition(".")
        return (table, member) if dot else None

    def bounds(self) -> tuple[float, float]:
        """The physical range (inclusive) of a number; a parameter that ``zero_allowed`` may
        also be exactly 0 (a number format's FLOPs per cycle: the chip lacks the format)."""
        return (self.low, self.high)

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
        1.0,
        1_000_000.0,
        zero_allowed=True,
        section="architecture",
        key=f"{FLOPS_GROUP}.{fmt}",
        required=False,
        shown=False,  # as peak_tflop_s per format
    )


HOPPER_EXP_PER_FLOP = 16.0 / 4096.0
"""Exponentials per dense bf16 FLOP per cycle of a Hopper SM: 16 special-function results per
clock per SM (CUDA C++ Programming Guide, arithmetic instruction throughput, compute
capability 9.0) against 4,096 dense bf16 FLOPs per clock per SM (989.4 TFLOP/s at 132 SMs and
1.83 GHz). A chip file that gives no ``exp_per_cycle_per_unit`` gets this ratio [E]."""


def _exp_rate(given: Any, section: Mapping[str, Any]) -> float:
    if given is not None:
        return float(given)
    return float(section[FLOPS_GROUP].get("bf16", 0.0) or 0.0) * HOPPER_EXP_PER_FLOP or 1.0


def _spare_units(physical: Any, section: Mapping[str, Any]) -> float:
    units = section["compute_units"]
    if physical < units:
        raise ValueError(f"at least compute_units ({units})")
    return float(physical - units)


def _modeled_price(chip: Chip, technology: Technology) -> float:
    return float("nan")  # catalog chips are priced as unit cost x markup (docs/model.md §3.2)


def _from_family(key: str) -> Callable[[Chip, Technology], float]:
    """The chip's value of ``key``: its architecture family's (chips/technology/families.toml)."""

    def value(chip: Chip, technology: Technology) -> float:
        return float(getattr(technology.family(chip.family), key))

    return value


def _published_or_family(key: str) -> Callable[[Chip, Technology], float]:
    """The chip's value of ``key``: its file's published measurement where it gives one, else
    its architecture family's (chips/technology/families.toml)."""
    family = _from_family(key)

    def value(chip: Chip, technology: Technology) -> float:
        if key in chip.published:
            return float(chip.published[key])  # type: ignore[arg-type]
        return family(chip, technology)

    return value


def _published_or_zero(key: str) -> Callable[[Chip, Technology], float]:
    """The chip's value of ``key``: its file's published measurement, else 0."""

    def value(chip: Chip, technology: Technology) -> float:
        return float(chip.published.get(key, 0.0))  # type: ignore[arg-type]

    return value


def _energy_per_flop_scale(chip: Chip, technology: Technology) -> float:
    from dse.model.silicon import chip_energy_scale

    return float(chip_energy_scale(chip, technology))


def _vendor_markup(chip: Chip, technology: Technology) -> float:
    from dse.pricing import vendor_markups

    return vendor_markups().get(chip.vendor, float("nan"))


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "node",
        "",
        "category",
        "process node of the logic dies (technology table nodes)",
        table="nodes",
        section="architecture",
        listed=True,
    ),
    Parameter(
        "dies_per_package",
        "dies",
        "int",
        "logic (compute) dies in the package",
        1,
        64,
        section="architecture",
    ),
    Parameter(
        "compute_units",
        "units",
        "int",
        "enabled compute units (SMs, CUs, MXUs, TPCs/MMEs, ...) per package",
        1,
        1_000_000,  # Cerebras WSE-3: 900,000 cores
        section="architecture",
        per_die=True,
    ),
    Parameter(
        "spare_units",
        "units",
        "int",
        "physical compute units beyond the enabled ones, harvested for yield (model §1.5)",
        0,
        1_000_000,
        zero_allowed=True,
        section="architecture",
        key="compute_units_physical",
        required=False,
        from_file=_spare_units,
        key_bounds=(1, 1_000_000),
        key_default="compute_units",
        notes="a chip file gives the physical units; the difference is the spares",
    ),
    Parameter(
        "clock_ghz",
        "GHz",
        "float",
        "sustained compute clock",
        0.1,
        10.0,
        section="architecture",
        notes="the clock of the dense tensor peak (not necessarily the marketing boost clock)",
    ),
    Parameter(
        "sram_mb",
        "MB",
        "float",
        "on-chip SRAM per package (caches, scratchpads, register files)",
        0.01,
        100_000.0,  # WSE-3: 44 GB
        section="architecture",
        per_die=True,
    ),
    Parameter(
        "tdp_w",
        "W",
        "float",
        "thermal design power of the package",
        1.0,
        100_000.0,  # WSE-3: 23 kW
        section="architecture",
        notes="the model throttles the clock to it (model §1.7)",
        listed=True,
        label="TDP",
    ),
    *(_flops(fmt) for fmt in FORMATS),
    Parameter(
        "exp_per_cycle_per_unit",
        "exp/cycle",
        "float",
        "exponentials per clock cycle per compute unit (special-function units: the softmax of"
        " attention)",
        0.01,
        1_000_000.0,
        section="architecture",
        required=False,
        from_file=_exp_rate,
        notes="absent: the bf16 FLOPs per cycle × 16/4096, Hopper's ratio; NVIDIA SMs 16,"
        " Blackwell Ultra 32 (docs/model.md §2.6)",
    ),
    Parameter(
        "matrix_unit_dim",
        "MACs",
        "int",
        "side of the square systolic array a compute unit multiplies on (TPU MXU, Trainium's"
        " tensor engine)",
        1,
        4096,
        zero_allowed=True,
        section="architecture",
        required=False,
        default=0.0,
        notes="a matmul dimension narrower than it leaves rows or columns idle, so attention at"
        " head width 128 runs at half rate on a 256-wide array (docs/model.md §2.3); 0, the"
        " default: no such array (GPU tensor cores, whose small tiles the measured GEMM and"
        " attention efficiencies hold); it changes neither the FLOPs per cycle nor the die area,"
        " so vary those with it",
    ),
    Parameter(
        "analog_cell",
        "",
        "category",
        "cell technology of the analog in-memory compute tiles (technology table analog_cells;"
        " none: digital only)",
        table="analog_cells",
        section="architecture",
        required=False,
        default="none",
        notes="the tiles run the forward and input-gradient matmuls (docs/model.md §2.9)",
    ),
    Parameter(
        "analog_tiles",
        "tiles",
        "int",
        "analog crossbar tiles per package, each rows x cols weights of its cell's table entry",
        1,
        10_000_000,
        zero_allowed=True,
        section="architecture",
        required=False,
        default=0.0,
        notes="0: no analog arrays; weight capacity = tiles x rows x cols",
    ),
    Parameter(
        "hbm_generation",
        "",
        "category",
        "HBM generation (technology table memories)",
        table="memories",
        section="memory",
        implies=(
            ("hbm_pin_rate_gbps", "pin_rate_gbps"),
            ("hbm_stack_capacity_gb", "stack_capacity_gb"),
        ),
    ),
    Parameter(
        "hbm_stacks",
        "stacks",
        "int",
        "active HBM stacks per package",
        1,
        16,
        zero_allowed=True,
        section="memory",
        notes="0: no HBM, for a chip whose weights live in its analog arrays and on-chip SRAM"
        " (memory = SRAM + arrays, bandwidth = SRAM's; docs/model.md §1.2)",
    ),
    Parameter(
        "hbm_pin_rate_gbps",
        "Gb/s",
        "float",
        "HBM data rate per pin",
        0.1,
        100.0,
        section="memory",
        required=False,
        notes="set it to reproduce the datasheet bandwidth",
    ),
    Parameter(
        "hbm_stack_capacity_gb",
        "GB",
        "float",
        "capacity of one HBM stack",
        0.1,
        1024.0,
        section="memory",
        required=False,
    ),
    Parameter(
        "scale_up_bandwidth_gb_s",
        "GB/s",
        "float",
        "scale-up link bandwidth per chip",
        0.1,
        1_000_000.0,
        section="interconnect",
        notes="**both directions together** (NVLink4: 900 = 450 each way)",
    ),
    Parameter(
        "scale_up_domain",
        "chips",
        "int",
        "chips in one scale-up (NVLink-like) domain",
        1,
        1_000_000,
        section="interconnect",
        notes="HGX: 8; TPU pod: 4096",
    ),
    Parameter(
        "scale_out_bandwidth_gb_s",
        "GB/s",
        "float",
        "scale-out network bandwidth per chip",
        0.01,
        1_000_000.0,
        section="interconnect",
        notes="**each direction** (one 400 Gb/s NIC per GPU = 50)",
    ),
    Parameter(
        "host_bandwidth_gb_s",
        "GB/s",
        "float",
        "host (CPU) link bandwidth per chip",
        0.01,
        1_000_000.0,
        section="interconnect",
        required=False,
        default=64.0,
        notes="**each direction**; the link activation offload uses (docs/model.md §2.5). PCIe"
        " 5.0 x16 = 64 (the default), 4.0 x16 = 32; GB200's NVLink-C2C = 225 per GPU",
    ),
    Parameter(
        "fabric_oversubscription",
        "ratio",
        "float",
        "scale-out fabric oversubscription above a pod",
        1.0,
        64.0,
        section="interconnect",
        required=False,
        default=1.0,
        notes="the pod's downlink bandwidth over its uplink bandwidth toward the rest of the"
        " cluster (docs/model.md §2.7): 1, the default, is a non-blocking fabric; Meta's Llama 3"
        " cluster: 7 between pods of 3,072 GPUs",
    ),
    Parameter(
        "fabric_pod_chips",
        "chips",
        "int",
        "chips in one non-blocking pod of the scale-out fabric",
        1,
        10_000_000,
        section="interconnect",
        required=False,
        default=10_000_000,
        notes="traffic between pods shares the oversubscribed uplinks; the default puts any"
        " cluster in one pod",
    ),
    Parameter(
        "in_network_reduction",
        "flag",
        "int",
        "all-reduce in the scale-out switches (1) or not (0)",
        0,
        1,
        section="interconnect",
        required=False,
        default=0,
        notes="InfiniBand SHARP through NCCL's CollNet: the switches sum the gradients, so an"
        " all-reduce crosses the network once instead of twice (docs/model.md §2.7)",
    ),
    Parameter(
        "scale_up_mesh",
        "flag",
        "int",
        "scale-up domain wired as a full mesh of direct links (1) or through switches (0)",
        0,
        1,
        section="interconnect",
        required=False,
        default=0,
        notes="1: each chip's scale-up bandwidth is split evenly over direct links to the"
        " domain's other chips (GH200 quad nodes, 4-GPU HGX boards, AMD Instinct and Gaudi"
        " 8-accelerator servers), so a collective among m of the domain's n chips uses only"
        " the links to its m - 1 peers, (m - 1)/(n - 1) of the bandwidth; 0, the default:"
        " NVSwitch, NVL72 (docs/model.md §2.7)",
    ),
    Parameter(
        "num_chips",
        "chips",
        "int",
        "chips in the training cluster",
        1,
        10_000_000,
        chip_carries=False,
        label="chips",
    ),
    Parameter(
        "unit_price_usd",
        "USD",
        "float",
        "explicit price of one chip (NaN, the usual case: unit cost x price_markup)",
        1.0,
        1e9,
        from_chip=_modeled_price,
        in_results=False,
    ),
    Parameter(
        "gemm_efficiency_scale",
        "",
        "float",
        "GEMM efficiency of the chip's architecture family relative to the reference "
        "(chips/technology/families.toml)",
        0.3,
        1.1,  # families.toml; the fit searches 0.4-1.1 (1.1 x 0.904 = 0.99 of the sustained rate)
        from_chip=_from_family("gemm_efficiency_scale"),
        calibrated=True,
    ),
    Parameter(
        "attention_efficiency_scale",
        "",
        "float",
        "fused attention efficiency relative to the reference, measured on the chip's own "
        "attention kernels (its file's published attention_efficiency_scale) or its "
        "architecture family's (chips/technology/families.toml); NaN: the family's "
        "gemm_efficiency_scale",
        0.3,
        1.5,
        from_chip=_published_or_family("attention_efficiency_scale"),
    ),
    Parameter(
        "fp8_attention_efficiency_scale",
        "",
        "float",
        "FP8 fused attention efficiency of the chip's architecture family over its 16-bit one, at "
        "the fp8 rate; applies to workloads with attention_precision = fp8 "
        "(chips/technology/families.toml; NaN: no measured FP8 kernel, the 16-bit rate)",
        0.2,
        1.5,
        from_chip=_from_family("fp8_attention_efficiency_scale"),
    ),
    Parameter(
        "hbm_efficiency_scale",
        "",
        "float",
        "share of its HBM bandwidth that the chip family's memory-bound kernels reach, over "
        "Hopper's (hbm_efficiency; chips/technology/families.toml); scales every HBM transfer",
        0.3,
        1.5,
        from_chip=_from_family("hbm_efficiency_scale"),
    ),
    Parameter(
        "attention_fixed_tokens",
        "tokens",
        "float",
        "fixed cost per query of the chip's fused attention kernel, in keys, beyond the blocks it "
        "computes, measured on its own kernels (its file's published attention_fixed_tokens; "
        "0 where none is measured)",
        0.0,
        1e6,
        zero_allowed=True,
        from_chip=_published_or_zero("attention_fixed_tokens"),
    ),
    Parameter(
        "flash2_attention_ratio",
        "",
        "float",
        "attention efficiency of FlashAttention-2 over the measured kernel on the chip's family "
        "(chips/technology/families.toml); applies to workloads with attention = flash2",
        0.2,
        1.0,
        from_chip=_from_family("flash2_attention_ratio"),
    ),
    Parameter(
        "collective_efficiency_scale",
        "",
        "float",
        "share of its links' bandwidth that the chip family's collective library reaches, over "
        "NCCL's (collective_efficiency; chips/technology/families.toml); scales every transfer "
        "of the scale-up and scale-out links",
        0.2,
        1.4,  # families.toml: Trainium 0.67 - Gaudi 1.3
        from_chip=_from_family("collective_efficiency_scale"),
    ),
    Parameter(
        "collective_latency_scale",
        "",
        "float",
        "fixed latencies of the chip family's collective library over NCCL's cost model's "
        "(chips/technology/families.toml); scales every collective's latency",
        0.5,
        5.0,  # families.toml: NCCL 1, Trainium 3.8
        from_chip=_from_family("collective_latency_scale"),
    ),
    Parameter(
        "memory_reserve_fraction",
        "",
        "float",
        "share of the HBM that the chip family's runtime keeps from programs "
        "(chips/technology/families.toml; NaN: the settings' memory_reserve_fraction)",
        0.0,
        0.9,
        zero_allowed=True,
        from_chip=_from_family("memory_reserve_fraction"),
    ),
    Parameter(
        "energy_per_flop_scale",
        "",
        "float",
        "tensor-unit energy per FLOP relative to the process node's (chips/technology/nodes.toml);"
        " a catalog chip's makes its datasheet dense peak draw exactly its TDP (docs/model.md §1.7)",
        0.05,
        5.0,  # catalog chips' span 0.4-2
        from_chip=_energy_per_flop_scale,
        derived=True,
    ),
    Parameter(
        "price_markup",
        "",
        "float",
        "price over modeled unit cost, the vendor's (dse/pricing.py; NaN: the default markup)",
        0.1,
        100.0,
        from_chip=_vendor_markup,
    ),
)
"""Every design parameter, in the column order of :class:`~dse.designs.Designs`."""

BY_NAME: dict[str, Parameter] = {p.name: p for p in PARAMETERS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
CATEGORICAL: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.categorical)
"""Parameters stored as integer codes into a technology table."""
CALIBRATED: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.calibrated)
"""Parameters fitted per chip family on the published runs."""
INTEGER: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.whole)
"""Parameters that take whole numbers."""
ZERO_ALLOWED: frozenset[str] = frozenset(p.name for p in PARAMETERS if p.zero_allowed)
"""Parameters that may be 0; all other numbers are > 0."""
RESULTS: tuple[str, ...] = tuple(p.name for p in PARAMETERS if p.in_results)
"""Design parameter columns of a results file."""
IN_CHIP_FILES: tuple[Parameter, ...] = tuple(p for p in PARAMETERS if p.section is not None)
"""Parameters a chip file gives, in declaration order."""


def implied_by(name: str) -> tuple[Parameter, str] | None:
    """The categorical whose table entry implies parameter ``name``, and the entry's attribute
    (an HBM generation's rated pin rate); None when no categorical implies it."""
    for p in PARAMETERS:
        for implied_name, attribute in p.implies:
            if implied_name == name:
                return p, attribute
    return None


def group_member(group: str, member: str) -> Parameter:
    """The parameter given as entry ``member`` of the chip file's table of numbers ``group``
    (``group_member("flops_per_cycle_per_unit", "fp8")``)."""
    for p in IN_CHIP_FILES:
        if p.group == (group, member):
            return p
    raise KeyError(f"{group}.{member}")


def by_table(table: str) -> Parameter:
    """The categorical parameter coded into the technology table ``table`` (``"nodes"``)."""
    for p in PARAMETERS:
        if p.table == table:
            return p
    raise KeyError(table)


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
