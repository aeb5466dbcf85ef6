"""A wire-compatible fake of the EMS partner API, for tests, benchmarks and local development.

It speaks shared/ems/README.md: form-encoded requests with the SM4 ``logitcsInterface`` envelope, response
envelopes with ``retBody`` as a JSON string, 040002 pushes to ``SimConfig.callback_url``. Parcels move through
real EMS event codes on a clock (automatic every ``step_seconds``, or manual via ``POST /admin/tick``), and
faults can be switched on at run time through ``/admin/faults``.

Modules: ``config`` (SimConfig), ``server`` (create_app, serve, the admin endpoints), ``parcels`` (the pure
parcel state machine), ``pusher`` (040002 delivery and retries), ``faults`` (fault settings and seeded
decisions), ``validation`` (B01/B02 checks), ``geo`` (provinces, postcodes, address split), ``wire`` (times,
codes, envelopes, and a request builder for callers that do not use carriers/ems).

What happens to a parcel is drawn at ordering from run-time settings (``GET/PUT /admin/faults``, beside the
faults; ``DELETE`` clears only the faults): ``delivery`` (``failed_attempt_rate`` one failed 705 then delivered,
``refusal_rate`` 104 then the return at once, ``undeliverable_rate`` every one of ``attempts`` fails then the
return; shares of parcels, at most 1 together; ``reasons`` the mix of the other reason codes;
``reason_fields_rate`` the share of 705/206/207 events that carry ``reasonCode``/``reasonDesc``), ``signers``
(the mix of signer classes; a whole mix replaces the old one, a parcel ordered with ``receiverSafetyCode`` only
gets ``addressee`` or ``family`` and a 704 saying 已核验收件人安全码), ``pickup`` (``failure_rate`` per door-pickup
attempt, 206 each, 207 after ``attempts``) and ``clock`` (``speed``: simulated seconds per second). Every event
is stamped with the simulated clock and a door pickup never before its booked window: the automatic clock waits
for it, a manual tick jumps the clock to it. The wording is data: signer_texts.csv, reason_texts.csv. A
return is 708 退回 events back to the sender's station, then 711 退回妥投. ``GET /admin/parcels[/{waybill}]``
shows what was drawn: ``signer_class``, ``verified_by_code``, ``attempts`` (failed 705s), ``failure_reasons``,
``refused``, ``returned``, ``pickup_attempts``, ``pickup_failure_reasons``, ``voided``, and ``state`` (ordered,
in_transit, returning, delivered, returned, voided, cancelled).

Codes chosen where the public material is silent: wrong senderNo/authorization → S02 (a configuration error
that a client should keep retrying, not a verdict on the order); address outside ``service_provinces`` →
B06; cancelling a collected parcel → B07; unknown order/waybill on cancel → B03; unknown waybill on 040001 →
success with no items.
"""

from carriers.simulator.config import SimConfig
from carriers.simulator.server import Simulator, create_app, get_simulator, serve

__all__ = ["SimConfig", "Simulator", "create_app", "get_simulator", "serve"]
