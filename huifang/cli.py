"""The `huifang` command line. Each group lives beside the code it drives; this file wires
them together and holds the few commands that belong to no single package."""

from __future__ import annotations

import json

import typer

from huifang.settings import Settings

app = typer.Typer(
    name="huifang",
    help="Huifang (回访): automated callback satisfaction surveys — SMS, IVR calls, "
    "speech recognition, escalations and supervision tickets.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (env HUIFANG_* over the HUIFANG_CONFIG TOML file), secrets masked."""
    typer.echo(json.dumps(Settings().masked(), ensure_ascii=False, indent=2, default=str))
