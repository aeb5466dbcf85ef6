"""Settings from the environment (prefix ``LOGISTICS_``); every default is the embedded single-machine mode."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOGISTICS_", extra="ignore")

    data_dir: Path = Path("./var")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    database_url: str | None = None  # unset → SQLite file in data_dir
    redis_url: str | None = None  # unset → a private redis-server on a unix socket in data_dir
    public_base_url: str | None = None  # unset → http://{host}:{port}
    log_level: str = "INFO"
    log_format: str = "json"  # json | text
    access_log: bool = True  # one http_request line per API request (route template, status, ms, request id)

    # Dispatch API
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    page_size_max: int = Field(100, ge=1)
    api_key_cache_seconds: float = Field(30.0, ge=0)
    queue_name: str = "logistics:queue"
    halls_file: Path | None = None  # JSON: department → the hall's address, for creates that leave it out

    # Workers
    sweep_interval_seconds: float = Field(5.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    job_timeout_seconds: float = Field(120.0, gt=0)
    worker_max_jobs: int = Field(64, ge=1)
    worker_claim_loops: int = Field(4, ge=1)  # claims a worker process works on at once (see runner.process_due)

    # Carrier: EMS (sandbox endpoint = our simulator unless configured)
    carrier: str = "ems"
    ems_base_url: str | None = None  # unset → the simulator at ems_sim_host:ems_sim_port
    ems_sandbox: bool = True
    ems_sender_no: str = "1100012345678"  # the contract's customer number: printed on labels, not a secret
    # The two carrier credentials default to the simulator's published values, which only `logistics dev` may
    # run on (it replaces them with fresh ones); api and worker refuse to start with them.
    ems_authorization: str = "sim-authorization-code"
    ems_sign_key: str = "TvaBgrhE46sft3nZlfe7xw=="
    ems_ecommerce_user_id: str = "gov-logistics"
    ems_biz_product_no: str = "1"
    ems_timeout_seconds: float = Field(10.0, gt=0)
    ems_sim_host: str = "127.0.0.1"
    ems_sim_port: int = Field(8090, ge=1, le=65535)
    ems_sim_step_seconds: float = Field(10.0, ge=0)
    tracking_retire_days: int = Field(30, ge=1)
    poll_first_seconds: float = Field(600.0, gt=0)  # first tracking poll after ordering (pushes may be lost)
    poll_max_seconds: float = Field(21600.0, gt=0)  # polls slow down to this while nothing changes
    carrier_attempts: int = Field(4, ge=1)  # tries of one carrier call inside one job
    carrier_retry_seconds: float = Field(20.0, gt=0)  # and their total time, before the task waits in the database

    # Labels: rendering processes per worker (0 = threads of the worker process itself)
    label_processes: int = Field(1, ge=0)

    # Webhooks
    webhook_allow_loopback: bool = False
    webhook_allow_cidrs: list[str] = []
    webhook_disable_after_hours: float = Field(120.0, gt=0)

    # Labels
    label_batch_max: int = Field(500, ge=1, le=5000)  # ids per POST /v1/labels: one request stays a few seconds

    # Privacy
    purge_after_days: int = Field(180, ge=1)
    # A create's stored answer (parties, 取件验证码) is replayed for a repeated Idempotency-Key this long, then
    # deleted by the hourly purge; the key is then a new request.
    idempotency_retention_hours: float = Field(24.0, gt=0)

    # People's pages: applicant links, public tracking, complaints, staff scans
    applicant_link_days: float = Field(7.0, gt=0)  # an applicant choice link expires this long after creation
    applicant_expiry_check_seconds: float = Field(300.0, ge=0)  # API-side sweep for expired links (0: off)
    tracking_rate_per_minute: int = Field(60, ge=1)  # per client IP, /t/… pages and JSON
    complaint_rate_per_hour: int = Field(5, ge=1)  # per client IP
    staff_lookup_rate_per_minute: int = Field(120, ge=1)  # per staff token, GET /v1/scans/lookup
    trust_forwarded_for: bool = False  # behind a reverse proxy: take the client IP from X-Forwarded-For
    # Who may read /metrics (it shows business volume): comma-separated IPs or CIDRs; loopback by default.
    metrics_allow: str = "127.0.0.1/32,::1/128"
    verification_max_attempts: int = Field(5, ge=1)  # wrong 取件验证码 per shipment before the hand-over locks
    scan_batch_max: int = Field(200, ge=1, le=2000)

    # The hall's console (/console)
    console_session_hours: float = Field(10.0, gt=0, le=24)  # a sign-in lasts one working day
    console_awaiting_days: float = Field(3.0, gt=0)  # awaiting_applicant longer than this is to chase
    console_pickup_hours: float = Field(24.0, gt=0)  # ordered but not picked up within this is to chase
    console_deadline_warn_days: int = Field(2, ge=0)  # warn this many days before due_by

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        """A typo here would otherwise surface only at the first scrape."""
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # ValueError names the bad entry
        return value

    @field_validator("database_url", "redis_url", "public_base_url", "ems_base_url", "halls_file", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'logistics.db').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def ems_url(self) -> str:
        if self.ems_base_url:
            return self.ems_base_url.rstrip("/")
        return f"http://{self.ems_sim_host}:{self.ems_sim_port}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


# Carrier credentials anyone can read: EMS's documentation sample key and the simulator's defaults. A service
# configured with one of these accepts carrier pushes anyone can seal.
PUBLISHED_CARRIER_SECRETS: dict[str, frozenset[str]] = {
    "ems_sign_key": frozenset({"TvaBgrhE46sft3nZlfe7xw=="}),
    "ems_authorization": frozenset({"sim-authorization-code", "sim-authorization-0001"}),
}


def published_carrier_secrets(settings: Settings) -> list[str]:
    """The environment names of carrier credentials that are empty or a published default."""
    return [
        f"LOGISTICS_{name.upper()}"
        for name, published in PUBLISHED_CARRIER_SECRETS.items()
        if not str(getattr(settings, name)).strip() or getattr(settings, name).strip() in published
    ]


def fresh_carrier_secrets() -> dict[str, str]:
    """New random carrier credentials as environment settings, for a simulator and the service that talks to it."""
    return {
        "LOGISTICS_EMS_SIGN_KEY": base64.b64encode(secrets.token_bytes(16)).decode("ascii"),
        "LOGISTICS_EMS_AUTHORIZATION": f"auth-{secrets.token_urlsafe(18)}",
    }


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators write (postgresql://, sqlite:///) and pick the async drivers."""
    for plain, async_ in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return async_ + url[len(plain) :]
    return url
