"""`huifang units add|edit|list`: the unit hierarchy from the command line, with the rules of
`huifang.domain.units` (a unit sits below its parent's level; no move into its own subtree).
A unit is named by its code or its id."""

from __future__ import annotations

from typing import Any

import typer

from huifang.settings import Settings

app = typer.Typer(help="Units: add, edit or move, list.", no_args_is_help=True)


def _run(step: Any) -> Any:
    """Run `step(session, now)` in one transaction; a refusal exits 1 naming the option."""
    from huifang.bootstrap import build_runtime
    from huifang.db import session_scope
    from huifang.errors import HuifangError

    runtime = build_runtime(Settings())
    try:
        with session_scope(runtime.engine) as session:
            return step(session, runtime.clock.now())
    except (HuifangError, ValueError) as refused:
        typer.secho(f"error: {refused}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()


def _unit(session: Any, ref: str, option: str) -> Any:
    from sqlalchemy import select
    from sqlmodel import col

    from huifang.domain.models import Unit

    unit_id = int(ref) if ref.isdigit() else -1
    found = (
        session.execute(select(Unit).where((col(Unit.code) == ref) | (col(Unit.id) == unit_id)))
        .scalars()
        .first()
    )
    if found is None:
        raise ValueError(f"{option}: no unit with code or id {ref!r}")
    return found


def _line(unit: Any) -> str:
    depth = unit.path.count("/") - 2
    return f"{unit.id}\t{unit.code}\t{unit.level}\t{'  ' * depth}{unit.name}"


@app.command("list")
def list_command() -> None:
    """Every unit, as a tree: id, code, level, name (indented under its parent)."""
    from huifang.domain.units import list_units

    for line in _run(lambda session, _now: [_line(u) for u in list_units(session)]):
        typer.echo(line)


@app.command("add")
def add_command(
    code: str = typer.Argument(..., help="the unit's code, unique"),
    name: str = typer.Argument(..., help="its name, e.g. 东门派出所"),
    level: str = typer.Option(..., "--level", help="bureau, branch or station"),
    parent: str = typer.Option("", "--parent", help="code or id of the unit above it"),
) -> None:
    """Add a unit under --parent (none: at the top)."""
    from huifang.domain.units import add_unit

    def add(session: Any, now: Any) -> str:
        above = _unit(session, parent, "--parent") if parent else None
        unit = add_unit(
            session, code=code, name=name, level=level, parent=above, actor=None, now=now
        )
        return _line(unit)

    typer.echo(_run(add))


@app.command("edit")
def edit_command(
    unit: str = typer.Argument(..., help="code or id of the unit"),
    code: str = typer.Option("", "--code", help="a new code"),
    name: str = typer.Option("", "--name", help="a new name"),
    level: str = typer.Option("", "--level", help="a new level: bureau, branch or station"),
    parent: str = typer.Option(
        "", "--parent", help="move it, with its subtree, under this unit (code or id)"
    ),
    top: bool = typer.Option(False, "--top", help="move it to the top (no parent)"),
    duty_phone: str = typer.Option(
        None, "--duty-phone", help="its duty phone, texted the notices of its tickets ('' removes)"
    ),
) -> None:
    """Rename, recode, relevel or move a unit; the options not given keep their value."""
    from huifang.domain.units import KEEP, edit_unit

    if parent and top:
        raise typer.BadParameter("give --parent or --top, not both", param_hint="--top")

    def edit(session: Any, now: Any) -> str:
        from huifang.phones import normalize_phone

        target = _unit(session, unit, "UNIT")
        phone = duty_phone
        if phone:
            phone = normalize_phone(phone, Settings().phone_region)
        above: Any = None if top else _unit(session, parent, "--parent") if parent else KEEP
        edited = edit_unit(
            session, target.id, actor=None, now=now, code=code or None, name=name or None,
            level=level or None, parent=above, duty_phone=phone,
        )  # fmt: skip
        return _line(edited)

    typer.echo(_run(edit))
