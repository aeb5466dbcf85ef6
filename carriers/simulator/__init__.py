"""A wire-compatible fake of the EMS partner API, for tests, benchmarks and local development.

It speaks shared/ems/README.md: form-encoded requests with the SM4 ``logitcsInterface`` envelope, response
envelopes with ``retBody`` as a JSON string, 040002 pushes to ``SimConfig.callback_url``. Parcels move through
real EMS event codes on a clock (automatic every ``step_seconds``, or manual via ``POST /admin/tick``), and
faults can be switched on at run time through ``/admin/faults``.

Modules: ``config`` (SimConfig), ``server`` (create_app, serve, the admin endpoints), ``parcels`` (the pure
parcel state machine), ``pusher`` (040002 delivery and retries), ``faults`` (fault settings and seeded
decisions), ``validation`` (B01/B02 checks), ``geo`` (provinces, postcodes, address split), ``wire`` (times,
codes, envelopes, and a request builder for callers that do not use carriers/ems).

Codes chosen where the public material is silent: wrong senderNo/authorization → S02 (a configuration error
that a client should keep retrying, not a verdict on the order); address outside ``service_provinces`` →
B06; cancelling a collected parcel → B07; unknown order/waybill on cancel → B03; unknown waybill on 040001 →
success with no items.
"""

from carriers.simulator.config import SimConfig
from carriers.simulator.server import Simulator, create_app, get_simulator, serve

__all__ = ["SimConfig", "Simulator", "create_app", "get_simulator", "serve"]
