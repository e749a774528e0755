"""Help in groups: a command's own options first, then the model settings by section.

An option whose ``help_group`` is set (see :class:`GroupedOption`) is listed under that heading;
the others under "Options", first. Commands that take model settings use
``cls=GroupedCommand``.
"""

from __future__ import annotations

from typing import Any

import click


class GroupedOption(click.Option):
    """An option listed under the heading ``help_group`` in ``--help``."""

    def __init__(self, *args: Any, help_group: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help_group = help_group


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options in groups, main options first."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {"Options": []}
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue
            record = param.get_help_record(ctx)
            if record is None:
                continue
            group = getattr(param, "help_group", None) or "Options"
            groups.setdefault(group, []).append(record)
        for heading, records in groups.items():
            if records:
                with formatter.section(heading):
                    formatter.write_dl(records)
