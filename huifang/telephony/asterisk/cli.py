"""`huifang asterisk …`: checks of the Asterisk that Huifang's calls run on."""

from __future__ import annotations

import asyncio

import typer

from huifang.settings import Settings

app = typer.Typer(help="The Asterisk Huifang calls through.", no_args_is_help=True)


@app.command("check")
def check() -> None:
    """Log in over AMI (HUIFANG_AMI_*) and check what the survey dialplan needs: the modules
    app_amd, res_agi, app_queue and app_mixmonitor, and the survey context. Names what is
    missing and how to fix it; exits 1 when anything is."""
    from huifang.telephony.asterisk.check import check_asterisk

    settings = Settings()
    findings = asyncio.run(check_asterisk(settings))
    for finding in findings:
        mark = "ok " if finding.ok else "MISSING"
        colour = typer.colors.GREEN if finding.ok else typer.colors.RED
        typer.secho(f"{mark:7} {finding.what}", fg=colour)
        if not finding.ok:
            typer.echo(f"        {finding.fix}")
    if not all(f.ok for f in findings):
        raise typer.Exit(1)
