"""The SM4 envelope EMS wraps every business body in (``logitcsInterface``).

Pure functions: no I/O, no configuration. See shared/ems/README.md, "Encryption".
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PREFIX = "|$4|"


class EnvelopeError(ValueError):
    """The text is not an envelope we can open with this key."""


def _cipher(sign_key: str) -> Cipher:
    try:
        key = base64.b64decode(sign_key, validate=True)
    except binascii.Error as exc:
        raise EnvelopeError("signKey is not base64") from exc
    if len(key) != 16:
        raise EnvelopeError("signKey must decode to 16 bytes")
    return Cipher(algorithms.SM4(key), modes.ECB())  # EMS mandates ECB


def seal(plaintext: str, sign_key: str, *, append_key: bool = True) -> str:
    """Encrypt a JSON text the way EMS expects it.

    Requests to EMS carry the signKey text appended to the JSON before encryption; pushes from
    EMS (and so our simulator's pushes) do not, hence ``append_key``.
    """
    data = (plaintext + sign_key if append_key else plaintext).encode("utf-8")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    enc = _cipher(sign_key).encryptor()
    return PREFIX + base64.b64encode(enc.update(padded) + enc.finalize()).decode("ascii")


def open_(envelope: str, sign_key: str, *, strip_key: bool = True) -> str:
    """Decrypt an envelope; with ``strip_key`` the appended signKey suffix is removed if present."""
    body = envelope[len(PREFIX):] if envelope.startswith(PREFIX) else envelope
    try:
        raw = base64.b64decode(body, validate=True)
        dec = _cipher(sign_key).decryptor()
        padded = dec.update(raw) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        text = (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError("cannot decrypt envelope with this key") from exc
    if strip_key and text.endswith(sign_key):
        text = text[: -len(sign_key)]
    return text
