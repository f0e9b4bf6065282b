"""What happens on a call, as the IVR interpreter hears it.

A provider adapter (Asterisk AGI, Twilio webhook, the simulator) turns what the phone
network reports into exactly one of these per input it was asked to collect.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The citizen answered; the script begins."""


@dataclass(frozen=True, slots=True)
class DigitsReceived:
    """Keys pressed, during a prompt (barge-in) or while collecting."""

    digits: str


@dataclass(frozen=True, slots=True)
class SpeechRecognized:
    """A recognizer's reading of what the citizen said, with its confidence 0..1."""

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """A `Record` action ended; `path` is where the provider stored the audio.

    `transcript` is filled when the adapter had the recording transcribed before feeding it.
    """

    path: str
    duration_seconds: float
    transcript: str = ""
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class NoInput:
    """The collection timed out with nothing pressed or said."""


@dataclass(frozen=True, slots=True)
class HungUp:
    """The citizen (or the network) ended the call."""


Event = CallStarted | DigitsReceived | SpeechRecognized | RecordingFinished | NoInput | HungUp
