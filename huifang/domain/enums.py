"""Business vocabularies shared by the pure cores and the tables.

This module imports nothing from the ORM so that `ivr`, `speech` and the protocol
modules can use the same words as the database.
"""

from enum import StrEnum


class Satisfaction(StrEnum):
    """What a citizen's answer means: the classifier's labels and a question's outcomes."""

    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    unsatisfied = "unsatisfied"
    unclear = "unclear"
    opt_out = "opt_out"


class ComplaintCategory(StrEnum):
    """The three dimensions the reference deployment measures, plus everything else."""

    attitude = "attitude"
    arrival_time = "arrival_time"
    handling = "handling"
    other = "other"


class IncidentSource(StrEnum):
    """The channel a citizen first reached the public service through."""

    police_110 = "110"
    hotline_12345 = "12345"
    hotline_12389 = "12389"
    window = "window"


class Channel(StrEnum):
    sms = "sms"
    voice = "voice"


class Language(StrEnum):
    zh_CN = "zh-CN"
    en_US = "en-US"
