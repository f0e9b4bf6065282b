"""IVR actions → TwiML, and Twilio's next request → the IVR event: one turn of a Twilio call.

Rules kept here:
- pure: actions and URLs in, an XML document out (Twilio's own `VoiceResponse` builder does
  the escaping, so a citizen's name in a prompt can never break the document);
- one response per turn: the prompts, then at most one input verb whose `action` URL is the
  next turn (`<Gather>` for a `Collect`, `<Record>` for a `Record`), or `<Hangup>`;
- prompts marked for barge-in that lead into a `Collect` are nested in its `<Gather>`, so a
  key pressed while they play is collected at once, as the IVR contract asks;
- silence is a request too, so the next turn hears `NoInput`: `<Gather actionOnEmptyResult>`,
  and a `<Redirect>` after `<Record>` (reached only when nothing was recorded);
- characters XML 1.0 cannot carry (control characters in a script or a variable) become
  spaces, so the document always parses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather, VoiceResponse

from huifang.ivr.actions import Action, Collect, Hangup, Play, Prompt, Record, SetVariable, Transfer
from huifang.ivr.events import DigitsReceived, Event, NoInput, RecordingFinished, SpeechRecognized

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: where a prompt's recorded audio can be fetched by Twilio, or None to speak its text
AudioUrl = Callable[[Prompt], str | None]


@dataclass(frozen=True, slots=True)
class TurnUrls:
    #: the voice webhook for the next turn (the input verb's `action`)
    next_turn: str
    #: where Twilio reports a finished recording (`recordingStatusCallback`)
    recording_status: str


def render_turn(
    actions: Sequence[Action], urls: TurnUrls, audio_url: AudioUrl | None = None
) -> str:
    """The TwiML document that performs `actions` and hands the outcome to `urls.next_turn`."""
    response = VoiceResponse()
    pending: list[Play] = []  # barge-in prompts waiting to see whether a Collect follows
    for action in actions:
        if isinstance(action, Play) and action.barge_in_digits:
            pending.append(action)
            continue
        if isinstance(action, Collect):
            gather = response.gather(**_gather_attributes(action, urls.next_turn))
            for play in pending:
                _say(gather, play.prompt, audio_url)
            pending.clear()
            continue
        for play in pending:
            _say(response, play.prompt, audio_url)
        pending.clear()
        match action:
            case Play(prompt=prompt):
                _say(response, prompt, audio_url)
            case Record():
                response.record(**_record_attributes(action, urls))
                # Twilio skips the action when nothing was recorded and carries on here
                response.redirect(urls.next_turn, method="POST")
            case Transfer(queue=queue):
                response.enqueue(queue)
            case Hangup():
                response.hangup()
            case SetVariable():
                pass  # channel variables are an Asterisk notion; Twilio has nothing to set
    for play in pending:
        _say(response, play.prompt, audio_url)
    return str(response.to_xml())


def turn_event(params: Mapping[str, str], *, recording_path: str) -> Event:
    """What the citizen did, from the fields of the request a `<Gather>` or `<Record>` sent.

    A recording is fed as stored at `recording_path` (fetched there after the call: Twilio
    makes the media available a little later, see the recording webhook).
    """
    if params.get("RecordingUrl"):
        duration = _number(params.get("RecordingDuration"))
        if duration > 0:
            return RecordingFinished(path=recording_path, duration_seconds=duration)
        return NoInput()
    digits = params.get("Digits", "")
    if digits and digits != "hangup":
        return DigitsReceived(digits)
    speech = params.get("SpeechResult", "").strip()
    if speech:
        return SpeechRecognized(speech, min(1.0, max(0.0, _number(params.get("Confidence")))))
    return NoInput()


def render_hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response.to_xml())


def _say(parent: VoiceResponse | Gather, prompt: Prompt, audio_url: AudioUrl | None) -> None:
    url = audio_url(prompt) if audio_url is not None else None
    if url:
        parent.play(url)
    else:
        parent.say(_xml_text(prompt.text), language=prompt.language)


def _number(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(" ", text)


def _gather_attributes(collect: Collect, action_url: str) -> dict[str, object]:
    inputs = [
        name
        for name, wanted in (("dtmf", collect.wants_digits), ("speech", collect.wants_speech))
        if wanted
    ]
    attributes: dict[str, object] = {
        "input": " ".join(inputs),
        "action": action_url,
        "method": "POST",
        "timeout": max(1, math.ceil(collect.timeout_seconds)),
        "action_on_empty_result": True,
    }
    if collect.wants_digits:
        attributes["num_digits"] = collect.max_digits
        if "#" in collect.digits:
            attributes["finish_on_key"] = ""  # '#' is an answer here, not the end of one
    if collect.wants_speech:
        attributes["language"] = collect.language
        attributes["hints"] = _xml_text(", ".join(collect.phrases))
        attributes["speech_timeout"] = "auto"
    return attributes


def _record_attributes(record: Record, urls: TurnUrls) -> dict[str, object]:
    return {
        "action": urls.next_turn,
        "method": "POST",
        "max_length": record.max_seconds,
        "timeout": record.silence_seconds,
        "play_beep": record.beep,
        "finish_on_key": "#",
        "trim": "trim-silence",
        "recording_status_callback": urls.recording_status,
        "recording_status_callback_event": "completed",
        "recording_status_callback_method": "POST",
    }
