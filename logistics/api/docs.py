"""/openapi.json (OpenAPI 3.1, generated from the models that validate requests) and a docs page."""

from __future__ import annotations

from functools import cache
from html import escape
from typing import Any

import orjson
from aiohttp import web
from pydantic.json_schema import models_json_schema

from labels import DEFAULT_DPI, DEFAULT_SIZE, FORMATS, SIZES, SUPPORTED_DPI
from logistics.api import people_docs, schemas
from logistics.api.openapi import REF, common_refusals, id_param, json_answer, list_operation, problem, ref
from logistics.api.webhooks import DELIVERY_STATUSES
from logistics.label_store import BATCH_FORMATS

routes = web.RouteTableDef()
COMMON = common_refusals("Missing or invalid API key")
ID_PARAM = id_param("shp")


_LABEL_CONTENT = {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "application/zpl": {"schema": {"type": "string"}},
}
_LABEL_SIZES = list(SIZES)
LABEL_PATHS: dict[str, Any] = {
    "/v1/shipments/{id}/label": {
        "get": {
            "operationId": "getLabel",
            "summary": "The shipment's label (面单), masked per GB/T 41833; cached, with an ETag",
            "parameters": [
                ID_PARAM,
                {"name": "format", "in": "query", "schema": {"enum": list(FORMATS), "default": "pdf"}},
                {"name": "size", "in": "query", "schema": {"enum": _LABEL_SIZES, "default": DEFAULT_SIZE}},
                {"name": "dpi", "in": "query", "schema": {"enum": list(SUPPORTED_DPI), "default": DEFAULT_DPI}},
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The label; ETag is its content hash", "content": _LABEL_CONTENT},
                "304": {"description": "Unchanged since the ETag given in If-None-Match"},
                "404": problem("Not found"),
                "409": problem("label-not-ready: no waybill yet"),
                **COMMON,
            },
        }
    },
    "/v1/labels": {
        "post": {
            "operationId": "printLabels",
            "summary": "Many labels in one document (multi-page PDF or one ZPL stream), in the order given",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["shipment_ids"],
                            "properties": {
                                "shipment_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                "format": {"enum": list(BATCH_FORMATS), "default": "pdf"},
                                "size": {"enum": _LABEL_SIZES, "default": DEFAULT_SIZE},
                                "dpi": {"enum": list(SUPPORTED_DPI), "default": DEFAULT_DPI},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "One printable document", "content": _LABEL_CONTENT},
                "409": problem("label-not-ready: `errors` lists the shipments without a waybill"),
                "422": problem("Validation failed; `errors` lists unknown ids and bad fields"),
                **COMMON,
            },
        }
    },
}

PROOF_PATHS: dict[str, Any] = {
    "/v1/shipments/{id}/proof": {
        "get": {
            "operationId": "getProof",
            "summary": "The proof of service (送达回证) of a delivered shipment: PDF, or JSON with "
            "Accept: application/json; X-Proof-SHA256 is the facts' digest printed on the page",
            "parameters": [ID_PARAM],
            "responses": {
                "200": {
                    "description": "The same bytes every time (until the purge); X-Proof-SHA256 header",
                    "content": {
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": ref("ProofDocumentOut")},
                    },
                },
                "404": problem("Not found"),
                "409": problem("proof-not-ready: not delivered"),
                **COMMON,
            },
        }
    },
}

_NOT_RETURNED = (
    "not-returned: only a returning or returned parcel, or an intake whose door pickup failed; already-resent; "
    "already-resolved; purged (the detail says which and why)"
)
RETURN_PATHS: dict[str, Any] = {
    "/v1/shipments/{id}/resend": {
        "post": {
            "operationId": "resendShipment",
            "summary": "Send a returned parcel again as a new linked shipment (resend_of / resent_as), ordered anew: "
            "a delivery with the corrected recipient, an intake with a new pickup window",
            "parameters": [
                ID_PARAM,
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                },
            ],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ResendIn")}}},
            "responses": {
                "201": json_answer("ShipmentOut", "The new shipment (or replayed, with Idempotent-Replayed: true)"),
                "404": problem("Not found"),
                "409": problem(_NOT_RETURNED),
                **COMMON,
            },
        }
    },
    "/v1/shipments/{id}/resolve": {
        "post": {
            "operationId": "resolveShipment",
            "summary": "Record the hall's decision on a returned parcel: window_pickup or closed, with a note; "
            "webhook shipment.resolved",
            "parameters": [ID_PARAM],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("ResolveIn")}}},
            "responses": {
                "200": json_answer("ShipmentOut", "Resolved"),
                "404": problem("Not found"),
                "409": problem(_NOT_RETURNED),
                **COMMON,
            },
        }
    },
}

DELIVERY_ID = id_param("msg")
WEBHOOK_PATHS: dict[str, Any] = {
    "/v1/webhook-deliveries": {
        "get": list_operation(
            "listWebhookDeliveries",
            "Webhooks owed or sent to this client, newest first, each with its attempts",
            [
                {"name": "status", "in": "query", "schema": {"enum": list(DELIVERY_STATUSES)}},
                {"name": "shipment_id", "in": "query", "schema": {"type": "string"}},
            ],
            "WebhookDeliveryPage",
            COMMON,
        )
    },
    "/v1/webhook-deliveries/{id}": {
        "get": {
            "operationId": "getWebhookDelivery",
            "summary": "One delivery with its attempts",
            "parameters": [DELIVERY_ID],
            "responses": {
                "200": json_answer("WebhookDeliveryOut", "The delivery"),
                "404": problem("Not found"),
                **COMMON,
            },
        }
    },
    "/v1/webhook-deliveries/{id}/redeliver": {
        "post": {
            "operationId": "redeliverWebhook",
            "summary": "Send it again, same webhook-id, fresh timestamp and signature, in order with its shipment",
            "parameters": [DELIVERY_ID],
            "responses": {
                "202": json_answer("WebhookDeliveryOut", "Queued"),
                "404": problem("Not found"),
                "409": problem("The endpoint is disabled; enable it first"),
                **COMMON,
            },
        }
    },
    "/v1/webhook-endpoint": {
        "get": {
            "operationId": "getWebhookEndpoint",
            "summary": "Where webhooks go and whether the endpoint is enabled",
            "responses": {"200": json_answer("WebhookEndpointOut", "The endpoint"), **COMMON},
        }
    },
    "/v1/webhook-endpoint/enable": {
        "post": {
            "operationId": "enableWebhookEndpoint",
            "summary": "Re-enable a disabled endpoint; what it skipped is sent again",
            "responses": {
                "200": json_answer("WebhookEndpointOut", "Enabled; `replayed` counts the deliveries queued again"),
                "409": problem("No webhook URL is set"),
                **COMMON,
            },
        }
    },
}

STATEMENT_PATHS: dict[str, Any] = {
    "/v1/statements": {
        "get": {
            "operationId": "getStatement",
            "summary": "A department's monthly statement (月结对账单) for the EMS settlement, as CSV",
            "description": "One row per shipment of yours and of the department handed to the post (its first "
            "`picked_up` event) in the Beijing calendar month, ordered by that date then waybill: 运单号, "
            "交寄日期 (Beijing date), 类型 (寄件 intake / 送达 delivery), 付款方式 (月结 monthly / 寄付 "
            "sender_pays), 办件编号 (case numbers joined with `;`), 寄递编号 (the shipment id). UTF-8 with a "
            "byte-order mark so Excel reads the Chinese; a cell starting with = + - @ gets a leading `'`. A "
            "month without shipments is the header alone. See docs/statements.md.",
            "parameters": [
                {
                    "name": "department",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                    "example": "上街区市场监督管理局",
                },
                {
                    "name": "month",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"},
                    "example": "2026-11",
                },
            ],
            "responses": {
                "200": {
                    "description": "The statement (streamed); `X-Statement-Rows` counts its rows",
                    "content": {"text/csv": {"schema": {"type": "string"}}},
                },
                **COMMON,
                "400": problem("department or month missing or malformed; `errors` names them"),
            },
        }
    },
}


@cache
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation") for m in (schemas.ShipmentCreate,)]
        + [(m, "validation") for m in (schemas.ResendIn, schemas.ResolveIn)]
        + [(m, "serialization") for m in (schemas.ShipmentOut, schemas.ShipmentPage, schemas.Problem)]
        + [(schemas.ProofDocumentOut, "serialization")]
        + [
            (m, "serialization")
            for m in (schemas.WebhookDeliveryOut, schemas.WebhookDeliveryPage, schemas.WebhookEndpointOut)
        ]
        + [(m, "validation") for m in people_docs.VALIDATION_MODELS]
        + [(m, "serialization") for m in people_docs.SERIALIZATION_MODELS],
        ref_template=REF,
    )
    components = defs.get("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "政务寄递 dispatch API",
            "version": "1.0.0",
            "description": "Approval systems create EMS intake (接件) and delivery (送达) shipments, follow them and "
            "receive signed webhooks. Errors are RFC 9457 problem+json.",
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key"},
                **people_docs.SECURITY_SCHEMES,
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/shipments": {
                "post": {
                    "operationId": "createShipment",
                    "summary": "Create a shipment; carrier work happens in workers",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("ShipmentCreate")}},
                    },
                    "responses": {
                        "201": json_answer("ShipmentOut", "Created (or replayed, with Idempotent-Replayed: true)"),
                        **COMMON,
                    },
                },
                "get": list_operation(
                    "listShipments",
                    "List shipments, newest first, in cursor pages",
                    [
                        {"name": "case_no", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                    ],
                    "ShipmentPage",
                    COMMON,
                ),
            },
            "/v1/shipments/{id}": {
                "get": {
                    "operationId": "getShipment",
                    "summary": "One shipment with its events",
                    "parameters": [ID_PARAM],
                    "responses": {
                        "200": json_answer("ShipmentOut", "The shipment"),
                        "404": problem("Not found"),
                        **COMMON,
                    },
                }
            },
            "/v1/shipments/{id}/cancel": {
                "post": {
                    "operationId": "cancelShipment",
                    "summary": "Cancel before pickup; cancels the carrier order too",
                    "parameters": [ID_PARAM],
                    "responses": {
                        "200": json_answer("ShipmentOut", "Cancelled"),
                        "404": problem("Not found"),
                        "409": problem("Already picked up or final"),
                        **COMMON,
                    },
                }
            },
            **RETURN_PATHS,
            **LABEL_PATHS,
            **PROOF_PATHS,
            **WEBHOOK_PATHS,
            **STATEMENT_PATHS,
            **people_docs.PATHS,
        },
    }


@routes.get("/openapi.json")
async def openapi(_: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# The page is rendered here from the same document, not by a script in the browser: it reads without JavaScript,
# and the page can forbid every script (DOCS_HEADERS).
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
DOCS_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<link rel="stylesheet" href="/static/docs.css"></head><body>
<h1>{title}</h1><p>{description}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI {version}). Authenticate with
<code>Authorization: Bearer &lt;api key&gt;</code>.</p>
<nav><ul>{toc}</ul></nav>
{operations}
</body></html>"""


@cache
def docs_html() -> str:
    doc = openapi_document()
    operations = [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]
    return DOCS_PAGE.format(
        title=escape(doc["info"]["title"]),
        description=escape(doc["info"]["description"]),
        version=escape(doc["openapi"]),
        toc="".join(
            f'<li><a href="#{escape(op["operationId"])}">{method.upper()} {escape(path)}</a> '
            f"{escape(op['summary'])}</li>"
            for method, path, op in operations
        ),
        operations="".join(operation_html(method, path, op, doc) for method, path, op in operations),
    )


def operation_html(method: str, path: str, op: dict[str, Any], doc: dict[str, Any]) -> str:
    parts = [
        f'<section id="{escape(op["operationId"])}"><h2><span class="method">{method.upper()}</span> '
        f"<code>{escape(path)}</code></h2><p>{escape(op['summary'])}</p>"
    ]
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else ''}</td>"
            f"<td><code>{escape(orjson.dumps(p.get('schema', {})).decode())}</code></td></tr>"
            for p in op["parameters"]
        )
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>{rows}</table>")
    for media, content in op.get("requestBody", {}).get("content", {}).items():
        schema = _resolved(content.get("schema", {}), doc)
        parts.append(
            f"<details><summary>Request body: <code>{escape(media)}</code></summary>"
            f"<pre>{escape(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode())}</pre></details>"
        )
    answers = "".join(
        f"<dt><code>{escape(code)}</code></dt><dd>{escape(answer.get('description', ''))}</dd>"
        for code, answer in op.get("responses", {}).items()
    )
    parts.append(f"<dl>{answers}</dl></section>")
    return "".join(parts)


def _resolved(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A schema given by reference, as the component it names (its own references left as they are)."""
    prefix = REF.format(model="")
    ref = schema.get("$ref", "")
    if not ref.startswith(prefix):
        return schema
    name = ref.removeprefix(prefix)
    return {"title": name, **doc["components"]["schemas"].get(name, {})}


@routes.get("/docs")
async def docs_page(_: web.Request) -> web.Response:
    return web.Response(text=docs_html(), content_type="text/html", charset="utf-8", headers=DOCS_HEADERS)
