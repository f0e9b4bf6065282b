"""Call scripts and the IVR interpreter.

- `script`      the YAML language, its model, validation with node paths (pure)
- `template`    `{variable}` rendering for prompts and SMS (pure)
- `interpreter` `Session`: events in, actions out, a `SurveyResult` at any time (pure)
- `codec`       JSON forms of events/actions/results and replay of a logged call (pure)
- `prompts`     prompt audio with espeak-ng and sox (the one I/O adapter here)
- `actions`, `events`, `result`: the contract every telephony provider codes against
- `cli`         `huifang script check | render | try`
"""
