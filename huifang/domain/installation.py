"""The installation's identity: a short random key, made once per database.

Two installations (two databases) may share a recording directory or one Asterisk; names
they write there carry this key. The row is made on first use by whichever process asks
first; a second process that raced it reads the winner's key.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from huifang.domain.models import Installation


def installation_key(session: Session, *, now: datetime) -> str:
    """This database's key (8 hex digits), made and committed on the first call."""
    found = session.get(Installation, 1)
    if found is not None:
        return found.key
    made = Installation(id=1, key=secrets.token_hex(4), created_at=now)
    try:
        with session.begin_nested():
            session.add(made)
    except IntegrityError:
        session.expunge(made)
        winner = session.get(Installation, 1, populate_existing=True)
        assert winner is not None
        return winner.key
    return made.key
