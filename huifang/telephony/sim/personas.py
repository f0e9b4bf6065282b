"""Virtual citizens for the simulated phone line and SMS gateway.

A persona says what a citizen does when the phone rings (per attempt: busy first, then
answers…), which key they press or what they say at each question, the complaint they
speak when asked why, where they hang up, and what they reply by SMS.

Rules kept here: pure and deterministic — a phone's persona comes from a seeded hash of
the phone, so a demo or a test run gives the same citizens every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from huifang.ivr.actions import Collect

ANSWER, BUSY, NO_ANSWER, FAIL = "answer", "busy", "no_answer", "fail"


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    #: what happens to the 1st, 2nd … call; the last entry repeats
    pickups: tuple[str, ...] = (ANSWER,)
    #: key pressed per question id; `default_key` elsewhere ("" = silence)
    keys: Mapping[str, str] = field(default_factory=dict)
    default_key: str = "1"
    #: key pressed per question id when a later call asks it again (a second callback after
    #: a reopening: the citizen has changed their mind); `keys` elsewhere
    keys_later: Mapping[str, str] = field(default_factory=dict)
    #: said instead of pressing a key, the first time a question is asked: (text, confidence)
    speech: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    #: spoken when the script records the reason of a complaint
    complaint: str = ""
    #: the question id at which the citizen hangs up
    hang_up_at: str | None = None
    #: on how many calls they hang up there (0: on every call); later calls run to the end
    hang_up_calls: int = 0
    #: the SMS reply to the survey SMS (None: no reply)
    sms_reply: str | None = None

    def pickup(self, call_number: int) -> str:
        return self.pickups[min(call_number, len(self.pickups)) - 1]

    def key(self, question_id: str, *, asked_before: bool = False) -> str:
        """The key pressed at `question_id` ("" = silence); `asked_before`: in an earlier call."""
        if asked_before and question_id in self.keys_later:
            return self.keys_later[question_id]
        return self.keys.get(question_id, self.default_key)

    def key_for(self, ask: Collect, *, asked_before: bool = False) -> str:
        key = self.key(ask.question_id, asked_before=asked_before)
        return key if key and key in ask.digits else ""

    def hangs_up(self, question_id: str, call_number: int) -> bool:
        """Whether the citizen hangs up at `question_id` on their `call_number`-th call."""
        if question_id != self.hang_up_at:
            return False
        return not self.hang_up_calls or call_number <= self.hang_up_calls


GRADES_3 = {"attitude": "3", "arrival_time": "3", "handling": "1", "overall": "3"}

PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona("satisfied"),
        Persona("basically_satisfied", keys={"confirm": "1"}, default_key="2"),
        Persona(
            "speaks_satisfied",
            speech={q: ("满意", 0.92) for q in ("attitude", "arrival_time", "handling", "overall")},
        ),
        Persona(
            # still unsatisfied at the first second callback, satisfied at the next one
            "complains",
            keys={**GRADES_3, "second_callback": "3"},
            keys_later={"second_callback": "1"},
            complaint="民警态度很差，到场太慢了，问题也没有解决。",
        ),
        # complain about one thing each, so that the dimensions' figures differ (the first
        # is unsatisfied at the first second callback too, like "complains")
        Persona(
            "complains_about_arrival",
            keys={"arrival_time": "3", "overall": "3", "second_callback": "3"},
            keys_later={"second_callback": "1"},
            complaint="报警以后等了一个多小时才来人，太慢了。",
        ),
        Persona(
            "complains_about_handling",
            keys={"handling": "3", "overall": "2", "second_callback": "1"},
            complaint="事情到现在也没人处理，问题一点没有解决。",
        ),
        # complains, and is satisfied once the unit has rectified (1 on the first second
        # callback); not in the realistic mix: assign it to the phones that need it
        Persona(
            "complains_then_satisfied",
            keys={**GRADES_3, "second_callback": "1"},
            complaint="民警态度很差，到场太慢了，问题也没有解决。",
        ),
        # complains, and after the unit's rectification is still unsatisfied (3 on every
        # second callback, and says so); not in the realistic mix either
        Persona(
            "stays_unsatisfied",
            keys={**GRADES_3, "second_callback": "3"},
            speech={"second_callback": ("还是不满意，问题一直没有解决", 0.9)},
            complaint="民警态度很差，问题到现在还是没有解决。",
        ),
        Persona("busy_then_satisfied", pickups=(BUSY, ANSWER)),
        Persona("never_answers", pickups=(NO_ANSWER,)),
        Persona("hangs_up", hang_up_at="arrival_time"),
        Persona("hangs_up_once", hang_up_at="arrival_time", hang_up_calls=1),
        Persona("answering_machine", default_key=""),
        Persona("unclear_speech", speech={"attitude": ("嗯那个我想想", 0.35)}),
        Persona("not_the_caller", keys={"confirm": "9"}),
        Persona("opts_out_by_key", keys={"confirm": "0"}),
        Persona("sms_satisfied", sms_reply="1"),
        Persona("sms_unsatisfied", sms_reply="3 民警态度不好，来得太慢"),
        Persona("sms_opt_out", sms_reply="TD"),
    )
}

#: a realistic mix for one day of 110 callbacks (weights, not necessarily summing to 1)
REALISTIC_MIX: Mapping[str, float] = {
    "satisfied": 30,
    "basically_satisfied": 8,
    "speaks_satisfied": 5,
    "complains": 2,
    "complains_about_arrival": 2,
    "complains_about_handling": 2,
    "busy_then_satisfied": 6,
    "never_answers": 10,
    "hangs_up": 2,
    "hangs_up_once": 3,
    "answering_machine": 4,
    "unclear_speech": 3,
    "not_the_caller": 1,
    "opts_out_by_key": 1,
    "sms_satisfied": 15,
    "sms_unsatisfied": 5,
    "sms_opt_out": 2,
}


class PersonaBook:
    """Which persona each phone gets: fixed assignments first, else drawn from `mix`."""

    def __init__(
        self,
        mix: Mapping[str, float] = REALISTIC_MIX,
        *,
        seed: int = 110,
        assigned: Mapping[str, str] | None = None,
    ) -> None:
        unknown = (set(mix) | set((assigned or {}).values())) - set(PERSONAS)
        if unknown:
            raise ValueError(f"unknown personas: {sorted(unknown)}; known: {sorted(PERSONAS)}")
        total = sum(mix.values())
        if total <= 0:
            raise ValueError("persona mix: the weights must add up to more than 0")
        self._cumulative: list[tuple[float, str]] = []
        running = 0.0
        for name, weight in mix.items():
            running += weight / total
            self._cumulative.append((running, name))
        self._seed = seed
        self._assigned = dict(assigned or {})

    def persona_for(self, phone: str) -> Persona:
        if phone in self._assigned:
            return PERSONAS[self._assigned[phone]]
        digest = hashlib.sha256(f"{self._seed}:{phone}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        for bound, name in self._cumulative:
            if draw < bound:
                return PERSONAS[name]
        return PERSONAS[self._cumulative[-1][1]]
