"""Tables. The database is the record of truth; Redis only carries signals that can be rebuilt from here."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Index,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    literal_column,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import text
from sqlmodel import Field, SQLModel

from logistics.domain.statuses import STATUSES

JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Always hand out aware UTC datetimes, whatever the backend stores (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # asyncpg decodes every timestamptz to an aware UTC datetime already: no Python call per value read (a
        # console list reads hundreds per page).
        if dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONType, nullable=nullable))


class Client(SQLModel, table=True):
    """One approval system (审批系统)."""

    __tablename__ = "clients"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str = Field(max_length=100)
    webhook_secret_previous: str | None = Field(default=None, max_length=100)
    webhook_previous_until: datetime | None = _ts(nullable=True)
    webhook_disabled_at: datetime | None = _ts(nullable=True)
    webhook_failing_since: datetime | None = _ts(nullable=True)
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    """API keys are stored as SHA-256 of a 256-bit random secret: not recoverable, fast to look up."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=40)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


# The console's reads (0016; figures in benchmarks/REPORT.md, "Console"). Statuses are written as SQL literals so
# a query can repeat a partial index's condition word for word (SQLite uses a partial index only then).
MOVED_STATUSES = (
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivery_failed",
    "returning",
    "delivered",
    "returned",
)


def constant(value: str) -> Any:
    """A constant of ours (a status, say) written into the statement's text, not bound: the server's plan made
    once for every execution of a prepared statement then knows it, and is good enough to be kept; with the
    value as a parameter the exception queue was planned anew at every page (2–3 ms, as long as running it)."""
    if not re.fullmatch(r"[a-z_]+", value):
        raise ValueError(f"not a constant: {value!r}")
    return literal_column(f"'{value}'")


def status_in_sql(statuses: tuple[str, ...], *, negated: bool = False) -> str:
    return f"status {'NOT IN' if negated else 'IN'} (" + ", ".join(f"'{s}'" for s in statuses) + ")"


# The applicant is the sender of an intake and the recipient of a delivery; the console finds them by phone or
# name through these expressions (a query must spell the same expression to use the index). After the purge the
# party holds masked values, so a search by the real phone or name finds nothing. PostgreSQL's is written as
# PostgreSQL prints it back, so the migration test can compare it; SQLite's is created by the migration only.
APPLICANT_FIELD_SQL: dict[str, str] = {
    "postgresql": "(\nCASE\n    WHEN kind::text = 'intake'::text THEN sender\n    ELSE recipient\n"
    "END ->> '{key}'::text)",
    "sqlite": "json_extract(CASE WHEN kind = 'intake' THEN sender ELSE recipient END, '$.{key}')",
}
# Where every create starts. The applicant indexes leave these out (0022), so a create pays for neither: a
# shipment enters them when it moves on (its order placed by the worker, say, or cancelled). The console finds a
# department's few starting shipments by status (``STARTED_SQL`` is the indexes' condition, word for word).
STARTING_STATUSES = ("pending", "awaiting_applicant")
STARTED_SQL = status_in_sql(STARTING_STATUSES, negated=True)
# A parcel that came back or failed and waits for the hall's decision (neither resent nor resolved) is for the
# console to chase: this expression is its department, NULL for every other shipment. On PostgreSQL the exception
# queue reads a department's through ix_shipments_undecided rather than every decided return of the department's
# history; statistics on the expression (0021) tell the planner how few they are, as the condition alone cannot.
UNDECIDED_STATUSES = ("failed", "returned", "returning")
UNDECIDED_DEPARTMENT_SQL = (
    f"CASE WHEN {status_in_sql(UNDECIDED_STATUSES)} AND resent_as IS NULL AND resolution IS NULL THEN department END"
)
# The same as PostgreSQL prints it back (the migration test compares the index's expression; 0021 creates it from
# the plain spelling above).
UNDECIDED_DEPARTMENT_PRINTED = (
    "(\nCASE\n    WHEN (status::text = ANY (ARRAY["
    + ", ".join(f"'{s}'::character varying" for s in UNDECIDED_STATUSES)
    + "]::text[])) AND resent_as IS NULL AND resolution IS NULL THEN department\n"
    "    ELSE NULL::character varying\nEND)"
)
CONSOLE_INDEXES = (
    # Replaces ix_shipments_status: lookups by status alone still lead with it; the console's by status within a
    # department (waiting for the courier, each exception) no longer read the department's whole history; and
    # with every status named (``created_between``), a department's shipments created in a time range (0019).
    Index("ix_shipments_status_department", "status", "department", "created_at"),
    # Today's picked-up and delivered lists: what moved since a time, per department. Partial, so a create (still
    # pending or awaiting the applicant) pays nothing for it.
    Index(
        "ix_shipments_department_moved",
        "department",
        "updated_at",
        postgresql_where=text(status_in_sql(MOVED_STATUSES)),
        sqlite_where=text(status_in_sql(MOVED_STATUSES)),
    ),
    *(
        Index(
            f"ix_shipments_applicant_{key}",
            text(APPLICANT_FIELD_SQL["postgresql"].format(key=key)),
            postgresql_where=text(STARTED_SQL),
        ).ddl_if(dialect="postgresql")
        for key in ("phone", "name")
    ),
    Index(
        "ix_shipments_undecided",
        text(UNDECIDED_DEPARTMENT_PRINTED),
        "status",
        "created_at",
        postgresql_where=text(f"({UNDECIDED_DEPARTMENT_SQL}) IS NOT NULL"),
    ).ddl_if(dialect="postgresql"),
)


class Shipment(SQLModel, table=True):
    __tablename__ = "shipments"
    __table_args__ = (
        Index("ix_shipments_client_id_id", "client_id", "id"),
        # Partial: only shipments with an applicant link pay for this index on the create hot path.
        Index(
            "ix_shipments_applicant_token_hash",
            "applicant_token_hash",
            unique=True,
            postgresql_where=text("applicant_token_hash IS NOT NULL"),
            sqlite_where=text("applicant_token_hash IS NOT NULL"),
        ),
        *CONSOLE_INDEXES,
    )

    id: str = Field(primary_key=True, max_length=40)  # also the carrier's logisticsOrderNo
    client_id: str = Field(foreign_key="clients.id", max_length=40)
    kind: str = Field(max_length=16)
    status: str = Field(max_length=32)  # indexed by ix_shipments_status_department (0016)
    department: str = Field(max_length=100)
    window: str = Field(max_length=100)
    sender: dict[str, Any] | None = _json()
    recipient: dict[str, Any] | None = _json()
    contents: list[dict[str, Any]] | None = _json()
    extra: dict[str, Any] | None = _json()  # the client's `metadata`
    pickup_start: datetime | None = _ts(nullable=True)
    pickup_end: datetime | None = _ts(nullable=True)
    verification_code: str | None = Field(default=None, max_length=6)
    tracking_code: str = Field(sa_column=Column(String(32), unique=True, nullable=False))
    carrier: str = Field(max_length=16)
    waybill_no: str | None = Field(default=None, max_length=32, index=True)
    route_code: str | None = Field(default=None, max_length=64)
    destination_code: str | None = Field(default=None, max_length=64)
    destination_name: str | None = Field(default=None, max_length=100)
    package_code: str | None = Field(default=None, max_length=64)
    package_name: str | None = Field(default=None, max_length=100)
    failure_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_sequence: int = 0
    request_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    purged_at: datetime | None = _ts(nullable=True)
    # First time a label was printed; reused so a label's bytes and content hash stay stable across renders.
    label_printed_at: datetime | None = _ts(nullable=True)
    # When the parcel was handed to the post: the time of its first pickup event not refused (0023). Kept on the
    # row by whoever records a pickup, so a list shows it without reading each shipment's events.
    handed_at: datetime | None = _ts(nullable=True)
    # When it was delivered: the time of its first delivery event not refused (0024), kept the same way.
    delivered_at: datetime | None = _ts(nullable=True)
    # The applicant's choice link (applicant_choice): only the SHA-256 of its random token is kept. These live on
    # the shipment so the link is written in the create transaction (the group commit inserts shipment rows).
    applicant_token_hash: str | None = Field(default=None, max_length=64)
    applicant_expires_at: datetime | None = _ts(nullable=True)
    applicant_used_at: datetime | None = _ts(nullable=True)
    applicant_expiry_notified_at: datetime | None = _ts(nullable=True)
    # The proof of service (送达回证), frozen in the transaction that marks the shipment delivered
    # (logistics/domain/proof.py); null before.
    proof: dict[str, Any] | None = _json()
    # Failed delivery or pickup attempts, and the latest one ({reason_code, reason, occurred_at, stage}). A
    # server default: the group commit inserts new shipments without naming these columns.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    last_failure: dict[str, Any] | None = _json()
    # The hall's decision on a parcel that came back: a new linked shipment, or {action, note, resolved_at}.
    resend_of: str | None = Field(default=None, max_length=40)
    resent_as: str | None = Field(default=None, max_length=40)
    resolution: dict[str, Any] | None = _json()
    # The statutory deadline (a Beijing date, inclusive) and when the overdue check found it missed (0010).
    due_by: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    overdue_at: datetime | None = _ts(nullable=True)
    # Who pays EMS: monthly | sender_pays (logistics.domain.payment), fixed at create; null before 0014.
    payment_mode: str | None = Field(default=None, max_length=16)


class ShipmentCase(SQLModel, table=True):
    """Cases (办件) carried by a shipment; a table of their own so `?case_no=` is an index lookup."""

    __tablename__ = "shipment_cases"
    # A shipment's cases in order (0020): a list's first case is the index's first entry, not a sort per row.
    __table_args__ = (Index("ix_shipment_cases_shipment_position", "shipment_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    position: int
    case_no: str = Field(max_length=64, index=True)
    item_name: str = Field(max_length=200)


class ShipmentEvent(SQLModel, table=True):
    __tablename__ = "shipment_events"
    __table_args__ = (
        UniqueConstraint("shipment_id", "sequence", name="uq_shipment_events_sequence"),
        UniqueConstraint("shipment_id", "dedup_key", name="uq_shipment_events_dedup"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # No index of its own: uq_shipment_events_sequence leads with it and serves every lookup by shipment.
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    sequence: int
    status: str = Field(max_length=32)
    occurred_at: datetime = _ts()
    recorded_at: datetime = _ts()
    source: str = Field(max_length=16)
    carrier_code: str | None = Field(default=None, max_length=16)
    carrier_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    location: str | None = Field(default=None, max_length=200)
    dedup_key: str | None = Field(default=None, max_length=128)
    # True when the forward-only rule refused the event's move and the event happened after the current status
    # was reached (``in_transit`` after ``delivered``): kept for the record and the client's API, never shown
    # on a public page. Late history (an earlier step pushed late) is not refused in this sense.
    refused: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Why an attempt failed or the parcel goes back: the EMS reason code (101 … 130) and its words.
    reason_code: str | None = Field(default=None, max_length=8)
    reason: str | None = Field(default=None, max_length=100)
    # The clerk who did it, for an action taken on the hall's console (never their token).
    staff_id: str | None = Field(default=None, max_length=40)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"

    client_id: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    shipment_id: str | None = Field(default=None, max_length=40)
    status_code: int
    response_body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()


class OutboxTask(SQLModel, table=True):
    """Work that must still happen. A row stays until its work is done; the sweeper always finds it again."""

    __tablename__ = "outbox"
    # by due time for the sweep and the oldest-first share of a claim; by kind and due time for the claims
    # that take the most urgent kinds first (outbox.claim_due)
    __table_args__ = (Index("ix_outbox_due", "due_at"), Index("ix_outbox_kind_due", "kind", "due_at"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    shipment_id: str | None = Field(default=None, max_length=40, index=True)
    payload: dict[str, Any] | None = _json()
    due_at: datetime = _ts()
    attempts: int = 0
    lease_until: datetime | None = _ts(nullable=True)
    claim_token: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    request_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()


class WebhookDelivery(SQLModel, table=True):
    """One message owed to a client's webhook endpoint; its id is the ``webhook-id`` the receiver dedupes on.

    ``position`` orders a shipment's deliveries (``sequence`` is the event's number and is shared by a status
    change and, say, the label that came with it). ``attempts`` counts the attempts of the current round: a
    redelivery starts the retry schedule again, while ``webhook_attempts`` keeps every attempt ever made.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("shipment_id", "position", name="uq_webhook_deliveries_position"),
        Index("ix_webhook_deliveries_head", "shipment_id", "status", "position"),
        Index("ix_webhook_deliveries_client_id_id", "client_id", "id"),
        Index("ix_webhook_deliveries_client_status", "client_id", "status", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(foreign_key="clients.id", max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    sequence: int
    position: int
    type: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    status: str = Field(max_length=16)  # pending | delivered | failed | skipped
    attempts: int = 0
    next_attempt_at: datetime | None = _ts(nullable=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()
    delivered_at: datetime | None = _ts(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    """Every attempt, kept for the client and the operators: what was answered, how fast, or what went wrong."""

    __tablename__ = "webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", index=True, max_length=40)
    attempted_at: datetime = _ts()
    status_code: int | None = None
    latency_ms: float
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LabelRender(SQLModel, table=True):
    """A rendered label kept so reprints are byte-identical and cheap; stale when ``content_hash`` differs.
    The proof of service's PDF is kept here too (``fmt`` ``proof``), so the purge deletes it with the labels."""

    __tablename__ = "label_renders"
    __table_args__ = (UniqueConstraint("shipment_id", "fmt", "size", "dpi", name="uq_label_renders_variant"),)

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    fmt: str = Field(max_length=8)
    size: str = Field(max_length=16)
    dpi: int
    content_hash: str = Field(max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts()


class Staff(SQLModel, table=True):
    """Postal couriers and hall clerks who scan labels. Tokens are stored as SHA-256, like API keys."""

    __tablename__ = "staff"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=50)
    role: str = Field(max_length=16)  # courier | clerk
    departments: list[str] = Field(sa_column=Column(JSONType, nullable=False))  # the halls/departments served
    token_prefix: str = Field(max_length=16)
    token_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class Scan(SQLModel, table=True):
    """Every scan a device uploaded, accepted or not: the audit trail, and the answer replayed for a repeated
    ``scan_id`` (devices resend their offline queue; the unique key makes that harmless)."""

    __tablename__ = "scans"
    __table_args__ = (UniqueConstraint("staff_id", "scan_id", name="uq_scans_staff_scan"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: str = Field(foreign_key="staff.id", max_length=40)
    scan_id: str = Field(max_length=64)
    shipment_id: str | None = Field(default=None, foreign_key="shipments.id", index=True, max_length=40)
    code: str = Field(max_length=300)
    action: str = Field(max_length=16)
    reason_code: str | None = Field(default=None, max_length=8)
    location: str | None = Field(default=None, max_length=200)
    scanned_at: datetime = _ts()
    received_at: datetime = _ts()
    result: str = Field(max_length=40)  # "recorded", "recorded_late" or an error code
    response: dict[str, Any] | None = _json()


class VerificationGuard(SQLModel, table=True):
    """Wrong 取件验证码 attempts per shipment; at the limit the hand-over is locked until an operator unlocks it."""

    __tablename__ = "verification_guards"

    shipment_id: str = Field(primary_key=True, foreign_key="shipments.id", max_length=40)
    failures: int = 0
    locked_at: datetime | None = _ts(nullable=True)
    updated_at: datetime = _ts()


class Complaint(SQLModel, table=True):
    """投诉 from the public tracking page, listed to the shipment's client."""

    __tablename__ = "complaints"
    __table_args__ = (
        Index("ix_complaints_client_id_id", "client_id", "id"),
        # The console's exception queue: a department's complaints still waiting for an answer (0018; few, and
        # never a create's).
        Index(
            "ix_complaints_unanswered",
            "department",
            "shipment_id",
            postgresql_where=text("answered_at IS NULL"),
            sqlite_where=text("answered_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", index=True, max_length=40)
    department: str = Field(max_length=100)  # the shipment's, for the console's queue (0018)
    client_id: str = Field(foreign_key="clients.id", max_length=40)
    category: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()
    # The hall's answer, from the console: shown (masked) on the tracking page, sent to the client.
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_at: datetime | None = _ts(nullable=True)
    answered_by: str | None = Field(default=None, max_length=40)  # the clerk's staff id


class ConsoleSession(SQLModel, table=True):
    """A clerk signed in on /console. Kept in the database, the record of truth: a sign-out or a revoked token
    must hold across a Redis restart. Only the SHA-256 of the cookie's random value is stored."""

    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=64)  # SHA-256 of the cookie value
    staff_id: str = Field(foreign_key="staff.id", index=True, max_length=40)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts()
    expires_at: datetime = _ts(index=True)
    ended_at: datetime | None = _ts(nullable=True)


class PersonalDataAccess(SQLModel, table=True):
    """Every view of a shipment's personal data on the console: who, when, which shipment, from where. Read by
    operators with `logistics audit`; never written to the application log."""

    __tablename__ = "personal_data_access"
    __table_args__ = (Index("ix_personal_data_access_staff", "staff_id", "viewed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: str = Field(foreign_key="staff.id", max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", index=True, max_length=40)
    viewed_at: datetime = _ts(index=True)
    address: str = Field(max_length=64)  # the client IP as the service saw it
    view: str = Field(max_length=32)  # shipment | find | list


class Manifest(SQLModel, table=True):
    """交接清单: one department's parcels handed to the EMS courier against a printed list. ``code`` is the random
    value in its QR code (unguessable: it moves parcels when scanned); the first scan records who took it over."""

    __tablename__ = "manifests"
    __table_args__ = (Index("ix_manifests_department_created", "department", "created_at"),)

    id: str = Field(primary_key=True, max_length=40)
    department: str = Field(max_length=100)
    created_by: str = Field(foreign_key="staff.id", max_length=40)
    created_at: datetime = _ts()
    code: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    taken_over_by: str | None = Field(default=None, foreign_key="staff.id", max_length=40)
    taken_over_at: datetime | None = _ts(nullable=True)


class ManifestItem(SQLModel, table=True):
    """One parcel on a manifest, in printed order; ``outcome`` is set at the take-over: ``taken_over`` when the
    scan picked it up, else the status it had already reached (then it was listed as already moved)."""

    __tablename__ = "manifest_items"

    manifest_id: str = Field(primary_key=True, foreign_key="manifests.id", max_length=40)
    shipment_id: str = Field(primary_key=True, foreign_key="shipments.id", index=True, max_length=40)
    position: int
    outcome: str | None = Field(default=None, max_length=24)


# 好差评 (issue 19): one rating per shipment; a bad one (1–2) opens a follow-up due in five working days.
class Rating(SQLModel, table=True):
    """The applicant's rating of a delivered shipment, from the tracking page. One per shipment (unique)."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("shipment_id", name="uq_ratings_shipment"),  # one rating per shipment, even in a race
        Index("ix_ratings_client_id_id", "client_id", "id"),
        Index("ix_ratings_created_at", "created_at"),  # the 公示 refresh reads a month's ratings (0017)
    )

    id: str = Field(primary_key=True, max_length=40)  # rat_…
    shipment_id: str = Field(foreign_key="shipments.id", max_length=40)
    client_id: str = Field(foreign_key="clients.id", max_length=40)
    level: int  # 5 = 非常满意 … 1 = 非常不满意
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # phone/ID numbers removed
    created_at: datetime = _ts()


class FollowUp(SQLModel, table=True):
    """The department's follow-up (回访) of a bad rating; closed with the action taken by the client or a clerk."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        UniqueConstraint("rating_id", name="uq_follow_ups_rating"),
        Index("ix_follow_ups_client_id_id", "client_id", "id"),
        # The console's exception queue: a department's open follow-ups by due date (0018).
        Index(
            "ix_follow_ups_open",
            "department",
            "due_by",
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=40)  # fu_…
    rating_id: str = Field(foreign_key="ratings.id", max_length=40)
    shipment_id: str = Field(foreign_key="shipments.id", index=True, max_length=40)
    department: str = Field(max_length=100)  # the shipment's, for the console's queue (0018)
    client_id: str = Field(max_length=40)
    opened_at: datetime = _ts()
    due_by: date = Field(sa_column=Column(Date, nullable=False))  # Beijing date
    closed_at: datetime | None = _ts(nullable=True)
    action: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    closed_by: str | None = Field(default=None, max_length=40)  # client id or staff id


# --- The public 公示 figures (logistics/gongshi, migration 0015) ---------------------------------------------
# Rows the figures' refresh finds changed since its last run, and the months it must compute, are found through
# partial indexes: only a shipment's picked_up and ending events pay for them on insert, not its creation.
GONGSHI_RECORDED_WHERE = "status IN ('picked_up', 'delivered', 'failed', 'returned')"
GONGSHI_ENDED_WHERE = "status IN ('delivered', 'failed', 'returned')"
Index(
    "ix_shipment_events_gongshi_recorded",
    ShipmentEvent.__table__.c.recorded_at,
    postgresql_where=text(GONGSHI_RECORDED_WHERE),
    sqlite_where=text(GONGSHI_RECORDED_WHERE),
)
Index(
    "ix_shipment_events_gongshi_ended",
    ShipmentEvent.__table__.c.occurred_at,
    postgresql_where=text(GONGSHI_ENDED_WHERE),
    sqlite_where=text(GONGSHI_ENDED_WHERE),
)


class GongshiCell(SQLModel, table=True):
    """One department's raw figures of one Beijing month (department "" is the district total); shown only
    through small-cell suppression (logistics/gongshi/suppress.py)."""

    __tablename__ = "gongshi_cells"

    month: str = Field(primary_key=True, max_length=7)  # YYYY-MM, Beijing
    department: str = Field(primary_key=True, max_length=100)
    figures: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    computed_at: datetime = _ts()


class GongshiState(SQLModel, table=True):
    """The refresh's single row: when the figures were computed, and the recorded_at watermark it reads from."""

    __tablename__ = "gongshi_state"

    id: int = Field(primary_key=True)
    watermark: datetime | None = _ts(nullable=True)
    refreshed_at: datetime | None = _ts(nullable=True)


clients = Client.__table__
api_keys = ApiKey.__table__
shipments = Shipment.__table__
shipment_cases = ShipmentCase.__table__
shipment_events = ShipmentEvent.__table__
idempotency_records = IdempotencyRecord.__table__
outbox = OutboxTask.__table__
webhook_deliveries = WebhookDelivery.__table__
webhook_attempts = WebhookAttempt.__table__
label_renders = LabelRender.__table__
staff = Staff.__table__
scans = Scan.__table__
verification_guards = VerificationGuard.__table__
complaints = Complaint.__table__
console_sessions = ConsoleSession.__table__
personal_data_access = PersonalDataAccess.__table__
ratings = Rating.__table__
follow_ups = FollowUp.__table__
gongshi_cells = GongshiCell.__table__
gongshi_state = GongshiState.__table__
metadata = SQLModel.metadata
manifests = Manifest.__table__
manifest_items = ManifestItem.__table__


def created_between(start: Any, end: Any) -> tuple[Any, ...]:
    """Shipments created in [start, end), spelt for ix_shipments_status_department: with every status named, a
    department's (or a few departments') are one index range per status, not a scan of their history."""
    return (
        shipments.c.status.in_([constant(s) for s in STATUSES]),
        shipments.c.created_at >= start,
        shipments.c.created_at < end,
    )
