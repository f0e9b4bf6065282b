"""The one Settings object: `HUIFANG_*` environment variables over an optional TOML file.

Precedence: explicit arguments > environment > the TOML file named by `HUIFANG_CONFIG`
> defaults. Defaults run the embedded configuration with nothing set: SQLite under the data
directory, the simulated phone line and SMS gateway, Asia/Shanghai, zh-CN.
"""

from __future__ import annotations

import os
from datetime import date, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: placeholder secrets refused outside the simulated configuration
_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", ""}


class Trunk(BaseModel):
    """A trunk: a line with a fixed number of channels (concurrent calls) and calls per
    second, reached through one provider (for Asterisk: the box at `ami_host`). Its channels
    are shared by every worker that dials through it, on every host (`dialer.trunks`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    channels: int = Field(ge=1, description="concurrent calls the trunk carries")
    calls_per_second: float = Field(default=5.0, gt=0, description="new calls per second")
    ami_host: str = Field(
        default="", description="the Asterisk box of this trunk (default: ami_host)"
    )
    ami_port: int = Field(default=0, ge=0, le=65535, description="its AMI port (default: ami_port)")
    channel_template: str = Field(
        default="", description="its dial string (default: asterisk_channel_template)"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUIFANG_", extra="forbid")

    # --- where things live
    data_dir: Path = Field(default=Path("./var"), description="recordings, prompts, models, db")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty = SQLite file")
    models_dir: Path | None = Field(
        default=None, description="Vosk models; default data_dir/models"
    )

    # --- logs (every process writes them to standard error)
    log_format: Literal["text", "json"] = Field(
        default="text", description="text: one readable line per event; json: one object"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- locale
    timezone: str = "Asia/Shanghai"
    language: Literal["zh-CN", "en-US"] = "zh-CN"
    phone_region: str = "CN"

    # --- HTTP
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="the URL Twilio and browsers use to reach us (behind a proxy: the proxy's)",
    )
    session_secret: SecretStr = SecretStr("")
    session_cookie_secure: bool | None = Field(
        default=None,
        description="send the console's session cookie over HTTPS only; default: on when "
        "public_base_url is https",
    )
    api_docs: bool = Field(
        default=False,
        description="serve Swagger UI at /docs (development: it loads its assets from a "
        "CDN); /openapi.json is served either way",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="the largest request body any route takes (JSON, forms, webhooks): a "
        "longer one is refused with 413 while it streams in, before the rest is read",
    )
    max_import_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="the largest incident file POST /api/v1/incidents/import takes, from an "
        "authenticated admin or integration only",
    )
    max_attachments_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        description="the largest rectification report with its files (each file at most "
        "20 MiB), from an authenticated unit supervisor or admin only",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="login attempts for one account from one client address within "
        "login_failure_window_seconds before that address must wait (429) for the account; "
        "a successful login starts the count over",
    )
    login_account_max_failures: int = Field(
        default=30,
        ge=1,
        description="failed logins for one account from all addresses together within "
        "login_failure_window_seconds before every address must wait: the slower "
        "account-wide back-off against guessing spread over many addresses",
    )
    login_failure_window_seconds: float = Field(
        default=900.0,
        gt=0,
        description="the window of login_max_failures and login_account_max_failures",
    )
    login_address_max_failures: int = Field(
        default=30,
        ge=1,
        description="failed logins from one client address within login_address_window_seconds "
        "before further logins from it are refused (429) until the window has room; the "
        "address is what uvicorn reports as the client: behind a reverse proxy, its "
        "proxy-headers setting (--proxy-headers, --forwarded-allow-ips) decides whether that "
        "is the proxy or the address in X-Forwarded-For; counted in the database, so it holds "
        "across workers and replicas",
    )
    login_address_window_seconds: float = Field(
        default=600.0, gt=0, description="the window of login_address_max_failures"
    )

    # --- providers
    telephony_provider: Literal["sim", "asterisk", "twilio"] = "sim"
    sms_provider: Literal["sim", "twilio", "http"] = "sim"
    sim_personas: dict[str, str] = Field(
        default_factory=dict,
        description="the simulated line: phone (E.164) → persona name for chosen citizens "
        '(e.g. {"+8613800000001": "stays_unsatisfied"}); others are drawn from the mix',
    )

    sim_call_seconds: float = Field(
        default=0.0,
        ge=0,
        description="the simulated line: real seconds each call holds its channel before the "
        "citizen picks up (or not); 0: calls take no time",
    )

    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "huifang"
    ami_secret: SecretStr = SecretStr("")
    asterisk_channel_template: str = "PJSIP/{number}@trunk"
    asterisk_context: str = "survey"
    asterisk_caller_id: str = ""
    asterisk_recordings_dir: Path = Path("/var/spool/asterisk/recording")
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_concurrency: int = Field(
        default=500, ge=1, description="calls the FastAGI server expects to connect at once"
    )

    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_from_number: str = ""
    twilio_timeout_seconds: float = 10.0

    sms_http_url: str = ""
    sms_http_auth_token: SecretStr = SecretStr("")
    sms_http_to_field: str = "mobile"
    sms_http_text_field: str = "content"
    sms_http_signature_secret: SecretStr = Field(
        default=SecretStr(""),
        description="shared secret of X-Huifang-Signature (hex HMAC-SHA256 of the body): "
        "signs what we send, and is required on the platform's webhooks to us",
    )
    # the platform's webhooks to us (/webhooks/sms-http/…): field names of its requests
    sms_http_inbound_from_field: str = Field(
        default="mobile", description="inbound reply: the field holding the citizen's phone"
    )
    sms_http_inbound_text_field: str = Field(
        default="content", description="inbound reply: the field holding the reply's text"
    )
    sms_http_inbound_id_field: str = Field(
        default="message_id",
        description="inbound reply: the platform's id of the message (a retry repeats it)",
    )
    sms_http_status_id_field: str = Field(
        default="message_id",
        description="delivery report: the platform's id of our message (from its send reply)",
    )
    sms_http_status_field: str = Field(
        default="status", description="delivery report: the field holding the delivery status"
    )
    sms_http_status_reference_field: str = Field(
        default="reference",
        description="delivery report: the field echoing the `reference` we sent the message "
        "with (optional; matches a report that arrives before the platform's reply to our send)",
    )
    sms_http_status_map: dict[str, str] = Field(
        default_factory=dict,
        description="delivery report: the platform's status words → ours (queued, accepted, "
        "sending, sent, delivered, undelivered, failed), e.g. "
        '{"DELIVRD": "delivered", "UNDELIV": "undelivered"}; empty = it uses our words',
    )
    sms_http_allow_unsigned: bool = Field(
        default=False,
        description="accept the platform's webhooks without X-Huifang-Signature when "
        "sms_http_signature_secret is empty (they change survey answers: only on a closed "
        "network)",
    )

    # --- dialer
    max_channels: int = Field(
        default=30, ge=1, description="channels of the one trunk used when `trunks` is empty"
    )
    calls_per_second: float = Field(
        default=5.0,
        gt=0,
        description="calls per second of the one trunk used when `trunks` is empty",
    )
    trunks: list[Trunk] = Field(
        default_factory=list,
        description="the trunks, each {name, channels, calls_per_second, ami_host, ami_port, "
        "channel_template} (env: a JSON list; TOML: [[trunks]] tables); empty = one trunk "
        '"default" of max_channels and calls_per_second',
    )
    trunk: str = Field(
        default="", description="the trunk this worker dials through (default: the first)"
    )
    trunk_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a worker's hold on a trunk channel lapses this long after its last "
        "heartbeat: a dead worker's channels are free again after at most this",
    )
    trunk_heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="how often a worker renews the channels it holds"
    )
    call_window_start: time = time(8, 30)
    call_window_end: time = time(20, 30)
    call_on_weekends: bool = True
    call_on_holidays: bool = False
    max_attempts: int = Field(default=3, ge=1)
    ring_timeout_seconds: int = 30
    contacts_per_24h: int = 2
    contacts_per_7d: int = 4
    lease_seconds: int = 120

    # --- follow-up
    ticket_deadline_days: int = 3
    ticket_deadline_working_days: bool = False
    claim_lease_minutes: int = 30
    escalation_sla_hours: int = 24
    #: days off / working days (调休) beyond the mainland calendar the `chinese-calendar`
    #: package knows (local holidays, or a year it does not cover yet)
    ticket_extra_holidays: list[date] = Field(default_factory=list)
    ticket_extra_workdays: list[date] = Field(default_factory=list)

    # --- personal data (huifang.privacy): kept this many days after the case closed; 0 keeps
    # them for ever. Counts, grades and rates never change.
    retention_recordings_days: int = Field(
        default=180, ge=0, description="complaint recordings' audio files"
    )
    retention_texts_days: int = Field(
        default=365,
        ge=0,
        description="transcripts, SMS replies, complaint summaries, agents' notes, the incident "
        "summary",
    )
    retention_phone_numbers_days: int = Field(
        default=365,
        ge=0,
        description="citizens' phone numbers (masked: 138****5678) and names (cleared)",
    )

    # --- speech
    speech_workers: int = Field(default=max(1, (os.cpu_count() or 1)), ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Asia/Shanghai"
            ) from exc
        return value

    @model_validator(mode="after")
    def _trunks_agree(self) -> Settings:
        names = [t.name for t in self.trunks]
        if len(set(names)) != len(names):
            raise ValueError(f"trunks: two trunks share a name ({names}); give each its own")
        if self.trunk and self.trunk not in (names or ["default"]):
            raise ValueError(
                f"trunk: no trunk named {self.trunk!r} in trunks; known: {names or ['default']}"
            )
        if self.trunk_heartbeat_seconds >= self.trunk_lease_seconds:
            raise ValueError(
                "trunk_heartbeat_seconds: must be shorter than trunk_lease_seconds, or a live "
                "worker's channels lapse between two heartbeats"
            )
        return self

    @model_validator(mode="after")
    def _real_secrets_for_real_networks(self) -> Settings:
        if (
            self.telephony_provider == "asterisk"
            and self.ami_secret.get_secret_value() in _PLACEHOLDERS
        ):
            raise ValueError("ami_secret: set HUIFANG_AMI_SECRET to the AMI user's secret")
        uses_twilio = "twilio" in (self.telephony_provider, self.sms_provider)
        if uses_twilio and self.twilio_auth_token.get_secret_value() in _PLACEHOLDERS:
            raise ValueError("twilio_auth_token: set HUIFANG_TWILIO_AUTH_TOKEN")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("HUIFANG_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(
                    f"HUIFANG_CONFIG names {config_file!r}, which is not a file"
                )
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    # --- derived
    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def dial_trunk(self) -> Trunk:
        """The trunk this process dials through: `trunk` by name, else the first of `trunks`,
        else one trunk of `max_channels` and `calls_per_second`."""
        for trunk in self.trunks:
            if trunk.name == self.trunk or not self.trunk:
                return trunk
        return Trunk(
            name="default", channels=self.max_channels, calls_per_second=self.calls_per_second
        )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'huifang.db').resolve()}"

    @property
    def cookie_secure(self) -> bool:
        """The session cookie's Secure flag: as set, or on behind an https public URL."""
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.public_base_url.lower().startswith("https://")

    @property
    def effective_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def prompts_dir(self) -> Path:
        return self.data_dir / "prompts"

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    def masked(self) -> dict[str, Any]:
        """Every effective setting, secrets shown as `****` (or empty when unset)."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "****" if value.get_secret_value() else ""
            elif name == "database_url":
                value = _mask_url_password(self.effective_database_url)
            elif name == "trunks":
                value = [trunk.model_dump() for trunk in self.trunks]
            shown[name] = str(value) if isinstance(value, Path | time) else value
        return shown


def _mask_url_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url
