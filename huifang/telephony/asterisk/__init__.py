"""Asterisk: calls placed over AMI, surveys run over FastAGI.

- `ami_proto`, `agi_proto`: the wire formats, sans I/O (bytes in, messages out; commands
  in, checked bytes out);
- `ami_client`: one kept-alive AMI session (login, ActionID pairing, reconnects);
- `provider`: `AsteriskProvider`, the `TelephonyProvider` (and `CallBridge`) over AMI;
- `agi_server`: `AgiServer`, which drives a `SurveyCall` for each answered call;
- `cli`: `huifang agi serve`.

Deployment: `config/asterisk/README.md`.
"""
