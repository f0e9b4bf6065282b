"""What Huifang's dialplan needs from Asterisk, checked over AMI with Huifang's own
least-privilege AMI user (`huifang asterisk check`, and the worker when it connects).

A module's presence is read with `Getvar` of `IFMODULE(<module>.so)` (func_module), which
the `reporting` right allows; the survey context with `ShowDialPlan`. A missing module is
the silent kind of failure: without `AMD()` every answered call just hangs up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from huifang.settings import Settings
from huifang.telephony.asterisk.ami_client import (
    AmiActionError,
    AmiAuthenticationError,
    AmiClient,
    AmiError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Requirement:
    module: str
    #: what the dialplan uses it for
    use: str
    fix: str


REQUIRED = (
    Requirement(
        "app_amd",
        "AMD(): answering-machine detection in [survey]",
        "copy config/asterisk/amd.conf into Asterisk's configuration directory (app_amd does "
        "not load without it), then: asterisk -rx 'module load app_amd.so'",
    ),
    Requirement(
        "res_agi",
        "AGI(): the survey runs over FastAGI",
        "asterisk -rx 'module load res_speech.so' and 'module load res_agi.so'",
    ),
    Requirement(
        "app_queue",
        "Queue(): transfers to callback agents in [agents]",
        "copy config/asterisk/queues.conf into Asterisk's configuration directory (app_queue "
        "does not load without it), then: asterisk -rx 'module load app_queue.so'",
    ),
    Requirement(
        "app_mixmonitor",
        "MixMonitor(): agents' callbacks are recorded in [agent-callback]",
        "asterisk -rx 'module load app_mixmonitor.so'",
    ),
)


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    what: str
    fix: str = ""


async def check_asterisk(settings: Settings) -> list[Finding]:
    """Connect with the settings' AMI user and check everything."""
    client = AmiClient(
        settings.ami_host, settings.ami_port, settings.ami_username,
        settings.ami_secret.get_secret_value(), ping_interval=3600,
    )  # fmt: skip
    where = f"AMI at {settings.ami_host}:{settings.ami_port}"
    try:
        await client.connect()
    except AmiAuthenticationError as exc:
        return [Finding(False, f"{where}: login", str(exc))]
    except (OSError, TimeoutError) as exc:
        return [
            Finding(
                False, f"{where}: no answer ({exc or type(exc).__name__})",
                "is Asterisk running, and do manager.conf's port, bindaddr and permit let "
                "this host in? (config/asterisk/manager.conf)",
            )
        ]  # fmt: skip
    try:
        return [
            Finding(True, f"{where}: logged in as {settings.ami_username}"),
            *await dialplan_findings(client, settings.asterisk_context),
        ]
    finally:
        await client.close()


async def dialplan_findings(client: AmiClient, context: str) -> list[Finding]:
    """The modules of `REQUIRED` and the survey context, over a connected client."""
    if not await _loaded(client, "func_module"):
        return [
            Finding(
                False, "func_module (IFMODULE, to tell which modules are loaded)",
                "asterisk -rx 'module load func_module.so', then check again",
            )
        ]  # fmt: skip
    findings = []
    for need in REQUIRED:
        loaded = await _loaded(client, need.module)
        findings.append(Finding(loaded, f"{need.module}: {need.use}", "" if loaded else need.fix))
    try:
        await client.send_list_action("ShowDialPlan", [("Context", context)])
        findings.append(Finding(True, f"dialplan context [{context}]"))
    except AmiActionError:
        findings.append(
            Finding(
                False, f"dialplan context [{context}] (HUIFANG_ASTERISK_CONTEXT)",
                "add the contexts of config/asterisk/extensions.conf to Asterisk's "
                "extensions.conf, then: asterisk -rx 'dialplan reload'",
            )
        )  # fmt: skip
    return findings


async def warn_missing(client: AmiClient, context: str) -> None:
    """Log what the dialplan lacks (the worker runs this when it first connects)."""
    try:
        findings = await dialplan_findings(client, context)
    except (AmiError, TimeoutError) as exc:
        log.warning("could not check Asterisk's modules: %s", exc)
        return
    for finding in findings:
        if not finding.ok:
            log.warning("Asterisk lacks %s; fix: %s", finding.what, finding.fix)


async def _loaded(client: AmiClient, module: str) -> bool:
    reply = await client.send_action("Getvar", [("Variable", f"IFMODULE({module}.so)")])
    return reply.get("Value").strip() == "1"
