"""Publishing call scripts: a validated script text becomes an immutable ScriptVersion row;
and the variables a script is rendered with for one incident.

Rules kept here: nothing invalid is published (`parse_script` refuses it with the path of the
bad node); versions count up per script name; publishing the same text again returns the
row already published instead of a new version, so a redeploy does not bump versions; a new
version is audited (`script.publish`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from huifang.domain.audit import record_audit
from huifang.domain.models import Incident, ScriptVersion, User
from huifang.ivr.script import builtin_scripts_dir, content_hash, parse_script
from huifang.ivr.template import incident_variables


def publish_script(
    session: Session, yaml_text: str, now: datetime, by: User | None = None
) -> ScriptVersion:
    script = parse_script(yaml_text)
    digest = content_hash(yaml_text)
    same = session.execute(
        select(ScriptVersion)
        .where(col(ScriptVersion.name) == script.name)
        .where(col(ScriptVersion.content_hash) == digest)
    ).first()
    if same:
        return same[0]
    latest = session.execute(
        select(func.max(col(ScriptVersion.version))).where(col(ScriptVersion.name) == script.name)
    ).one()[0]
    version = ScriptVersion(
        name=script.name,
        version=(latest or 0) + 1,
        language=script.language,
        source_yaml=yaml_text,
        content_hash=digest,
        published_at=now,
        published_by=by.id if by else None,
    )
    session.add(version)
    session.flush()
    record_audit(
        session, at=now, actor=by, action="script.publish", target_type="script_version",
        target_id=version.id, detail={"name": version.name, "version": version.version},
    )  # fmt: skip
    return version


def find_script(session: Session, ref: str, now: datetime) -> ScriptVersion:
    """A published script by version id, or by name (its latest version); a built-in script's
    name publishes it on first use. ValueError naming `script` when there is none."""
    if ref.isdigit():
        version = session.get(ScriptVersion, int(ref))
        if version is None:
            raise ValueError(f"script: no published script version {ref}")
        return version
    latest = session.execute(
        select(ScriptVersion)
        .where(col(ScriptVersion.name) == ref)
        .order_by(col(ScriptVersion.version).desc())
    ).first()
    if latest:
        return latest[0]
    builtin = builtin_scripts_dir() / f"{ref}.yaml"
    if builtin.parent == builtin_scripts_dir() and builtin.is_file():
        return publish_script(session, builtin.read_text(encoding="utf-8"), now)
    raise ValueError(f"script: no published or built-in script named {ref!r}")


def script_variables(
    incident: Incident, *, unit_name: str, language: str, tz: tzinfo
) -> dict[str, str]:
    """What the SMS and the call say about `incident`, its time worded in the deployment's
    zone `tz` (a citizen remembers the local day they called, not the UTC one)."""
    return incident_variables(
        occurred_at=incident.occurred_at.astimezone(tz),
        language=language,
        source=incident.source,
        unit_name=unit_name,
        category=incident.category,
        reference=incident.external_id,
    )
