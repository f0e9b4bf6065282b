"""The installation key: made once per database, the same for every process after."""

from __future__ import annotations

import re

from sqlmodel import Session

from huifang.db import session_scope
from huifang.domain.installation import installation_key
from tests.factories import T0


def test_the_key_is_made_once_and_kept(session: Session) -> None:
    key = installation_key(session, now=T0)
    session.commit()
    assert re.fullmatch(r"[0-9a-f]{8}", key)
    assert installation_key(session, now=T0) == key


def test_two_databases_have_different_keys(sqlite_engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from huifang.db import create_db_engine, upgrade

    other = create_db_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    with session_scope(sqlite_engine) as one, session_scope(other) as two:
        assert installation_key(one, now=T0) != installation_key(two, now=T0)
    other.dispose()
