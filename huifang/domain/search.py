"""Search terms a person typed (an incident number, a ticket number, a category), checked
before they meet the database: surrounding spaces dropped, control characters refused
(PostgreSQL refuses a NUL in a string outright), the field named in the refusal."""

from __future__ import annotations


def exact_term(field: str, value: str) -> str:
    """`value` as an exact-match term; ValueError naming `field` when it cannot be one."""
    term = value.strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in term):
        raise ValueError(f"{field}: control characters cannot be part of it")
    return term
