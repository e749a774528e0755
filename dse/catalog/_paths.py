"""Where the shipped data lives, installed or in a source checkout, and name → file resolution."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dse.errors import NotFoundError
from dse.files import exists, is_file


def data_dir(kind: str) -> Path:
    """The folder of shipped ``kind`` files (``"chips"``, ``"workloads"``, ``"spaces"``).

    Installed wheels carry the data under ``dse/_data/``; a source checkout keeps it at the
    repository root beside the package.
    """
    installed = Path(str(resources.files("dse"))) / "_data" / kind
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / kind


def catalog_ids(kind: str) -> list[str]:
    """Sorted ids (file names without ``.toml``) of the shipped ``kind`` files."""
    return sorted(path.stem for path in data_dir(kind).glob("*.toml"))


def resolve(kind: str, name: str | Path) -> Path:
    """A catalog id or a path to a TOML file → the file's path.

    Raises :class:`NotFoundError` listing the known ids when ``name`` is neither.
    """
    text = str(name)
    candidate = data_dir(kind) / f"{text}.toml"
    if "/" not in text and not text.endswith(".toml") and is_file(candidate):
        return candidate
    path = Path(text).expanduser()
    if path.suffix == ".toml" or exists(path):
        return path
    raise NotFoundError(kind.rstrip("s"), text, catalog_ids(kind))
