"""Prometheus metrics (GET /metrics on the API; the worker exposes its own registry on a port if asked)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter("logistics_http_requests_total", "API requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "logistics_http_request_seconds",
    "API latency",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SHIPMENTS_CREATED = Counter("logistics_shipments_created_total", "Shipments created", ["kind"])
COMMIT_BATCH = Histogram(
    "logistics_group_commit_batch_size", "Shipments per group commit", buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500)
)
CARRIER_CALLS = Counter("logistics_carrier_calls_total", "Carrier calls", ["carrier", "operation", "outcome"])
CARRIER_LATENCY = Histogram("logistics_carrier_call_seconds", "Carrier call latency", ["carrier", "operation"])
CARRIER_RETRIES = Counter("logistics_carrier_retries_total", "Carrier call retries", ["carrier", "operation"])
OUTBOX_DUE = Gauge("logistics_outbox_due", "Outbox tasks due now (queue depth)")
TASKS = Counter("logistics_tasks_total", "Outbox tasks run", ["kind", "outcome"])
WEBHOOK_ENDPOINTS_DISABLED = Counter("logistics_webhook_endpoints_disabled_total", "Webhook endpoints disabled")
DEADLINES_PROVISIONAL = Counter(
    "logistics_deadlines_provisional_total", "Deadlines counted past the holiday calendar's last covered year"
)
SHIPMENTS_OVERDUE = Counter("logistics_shipments_overdue_total", "Shipments found not delivered by due_by")
