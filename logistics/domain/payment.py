"""Who pays EMS for a shipment (the halls file's ``payment_mode``, fixed on the shipment at create).

``monthly`` (月结): the hall pays, on its EMS contract account, settled once a month against the department's
statement (logistics/statement.py). It is the default because it is what the service has always done — an
applicant pays nothing, whichever way the papers travel — and what the 月结 statement exists for.
``sender_pays`` (寄付): whoever hands the parcel to the post pays on the spot: the hall for a delivery, the
applicant at the door pickup of an intake.

Asking the recipient to pay a delivery (``recipient_pays``, 到付) is refused: a result is delivered at the hall's
cost (办件结果寄递费用由政务服务中心承担). On an intake the hall is the recipient, and it pays by ``monthly``.
"""

from __future__ import annotations

from typing import Literal

PaymentMode = Literal["sender_pays", "monthly"]
PAYMENT_MODES: tuple[PaymentMode, ...] = ("sender_pays", "monthly")
DEFAULT_PAYMENT_MODE: PaymentMode = "monthly"
RECIPIENT_PAYS = "recipient_pays"  # accepted by the create API only to be refused with the reason
PAYMENT_TEXT: dict[str, str] = {"sender_pays": "寄付", "monthly": "月结"}

RECIPIENT_PAYS_REFUSAL = {
    "delivery": "recipient_pays is not allowed for a delivery: the result of a case is delivered at the hall's "
    "cost, never charged to the applicant (办件结果寄递费用由政务服务中心承担); use monthly or sender_pays",
    "intake": "recipient_pays is not allowed for an intake: the hall is the recipient and pays by its monthly "
    "settlement; use monthly (the hall pays) or sender_pays (the applicant pays at the door pickup)",
}
