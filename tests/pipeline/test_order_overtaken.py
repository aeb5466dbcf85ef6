"""An order whose answer was lost while the parcel travelled on: the waybill is still stored and labelled."""

from __future__ import annotations

from pipeline_support import Stack, StackFactory, wait_until
from sqlalchemy import select, update

from logistics.domain.tables import outbox, shipments, utcnow

from support import delivery_body


async def _order_task_count(stack: Stack) -> int:
    return await stack.outbox_count("order")


async def test_a_shipment_delivered_before_its_order_answer_was_stored_gets_its_waybill(
    make_stack: StackFactory,
) -> None:
    # Found by the chaos run: EMS created the order but our call timed out, so the order task waited (backoff)
    # while the parcel's pushes carried the shipment to `delivered`. The task then saw a final status and gave
    # up, leaving a delivered shipment with no waybill and no label.
    stack = await make_stack(carrier_attempts=1, ems_timeout_seconds=1.0)
    await stack.faults({"errors": {"timeout_after_create": 1.0}, "hang_seconds": 2.0, "api_codes": ["020003"]})
    sid = await stack.create(delivery_body())

    async def ordered_at_ems() -> str | None:
        return (await stack.orders())["waybills"].get(sid)

    async def deferred() -> bool:
        async with stack.db.read() as conn:
            row = (await conn.execute(select(outbox).where(outbox.c.kind == "order"))).first()
        return row is not None and row.last_error is not None and row.lease_until is None

    waybill = await wait_until(ordered_at_ems, timeout=15, what="the order created at EMS")
    await wait_until(deferred, timeout=15, what="the order task waiting after the lost answer")
    await stack.sim_json("DELETE", "/admin/faults")
    await stack.tick(20, waybill)  # the whole journey, pushed to the API
    await stack.wait_status([sid], "delivered", timeout=20)
    async with stack.db.read() as conn:
        assert (await conn.execute(select(shipments.c.waybill_no).where(shipments.c.id == sid))).scalar() is None
    async with stack.db.write() as conn:  # the deferred order task comes due
        await conn.execute(update(outbox).where(outbox.c.kind == "order").values(due_at=utcnow()))

    await wait_until(lambda: _no_order_tasks(stack), timeout=15, what="the order task done")
    shipment = await stack.shipment(sid)
    assert shipment["status"] == "delivered"
    assert shipment["waybill_no"] == waybill
    assert (await stack.orders())["orders"] == {sid: 1}
    assert await stack.outbox_count("label") == 1  # the label (and its label_ready webhook) follows


async def _no_order_tasks(stack: Stack) -> bool:
    return await _order_task_count(stack) == 0
