import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from carriers.base import PushRejected, PushResult
from carriers.ems.envelope import seal
from carriers.ems.messages import parse_push

FIXTURES = Path(__file__).parent / "fixtures" / "ems"
SIGN_KEY = "TvaBgrhE46sft3nZlfe7xw=="  # the key push_040002.json was sealed with
OTHER_KEY = "WjNoNmhXWE12SFZJdk0zWQ=="
SENDER_NO = "1100012345678"
SERIAL = "C3E7E1A2E6F44EB9B09EB9116C89FC86"


def _push_bytes() -> bytes:
    return (FIXTURES / "push_040002.json").read_bytes()


def _push_fields() -> dict[str, str]:
    return json.loads(_push_bytes())


def _parse(body: bytes, content_type: str = "application/json", key: str = SIGN_KEY) -> PushResult:
    return parse_push(body, content_type, sign_key=key, sender_no=SENDER_NO)


def _rejected(body: bytes, content_type: str = "application/json", key: str = SIGN_KEY) -> PushRejected:
    with pytest.raises(PushRejected) as caught:
        _parse(body, content_type, key)
    return caught.value


def test_push_decrypts_to_one_event() -> None:
    (event,) = _parse(_push_bytes()).events
    assert event.waybill_no == "1295780512499"
    assert event.order_no == "shp_01JD8Z6Q2M4X7V3K9T1R5N8B2C"
    assert event.code == "704"
    assert event.status == "delivered"


def test_push_reply_is_exact() -> None:
    assert _parse(_push_bytes()).reply == (
        b'{"serialNo": "C3E7E1A2E6F44EB9B09EB9116C89FC86", "code": "00000", '
        b'"codeMessage": "", "senderNo": "1100012345678"}'
    )
    assert _parse(_push_bytes()).reply_content_type == "application/json"


def test_form_encoded_push_is_accepted() -> None:
    body = urlencode(_push_fields()).encode("ascii")
    (event,) = _parse(body, "application/x-www-form-urlencoded").events
    assert event.code == "704"


def test_form_push_with_unescaped_plus_signs_still_opens() -> None:
    fields = _push_fields()
    assert "+" in fields["logitcsInterface"]
    body = "&".join(f"{k}={v}" for k, v in fields.items()).encode("utf-8")
    (event,) = _parse(body, "application/x-www-form-urlencoded").events
    assert event.status == "delivered"


def test_json_labelled_as_form_is_still_read() -> None:
    (event,) = _parse(_push_bytes(), "application/x-www-form-urlencoded;charset=UTF-8").events
    assert event.code == "704"


def test_push_sealed_with_key_suffix_is_accepted() -> None:
    event = {"waybillNo": "1295780512499", "opCode": "702", "opName": "投递邮件接收-下段",
             "opDesc": "正在派送中", "opTime": "2026-11-27 08:03:44"}
    fields = {**_push_fields(), "logitcsInterface": seal(json.dumps(event, ensure_ascii=False), SIGN_KEY)}
    (parsed,) = _parse(json.dumps(fields).encode("utf-8")).events
    assert parsed.status == "out_for_delivery"


def test_wrong_key_push_is_rejected_with_s00001() -> None:
    rejected = _rejected(_push_bytes(), key=OTHER_KEY)
    reply = json.loads(rejected.reply)
    assert reply["code"] == "S00001"
    assert reply["serialNo"] == SERIAL
    assert reply["senderNo"] == SENDER_NO


def test_malformed_push_body_is_rejected() -> None:
    reply = json.loads(_rejected(b'{"serialNo": "X1", "logitcsInterface": ').reply)
    assert reply["code"] == "S00001"


def test_push_without_envelope_is_rejected_echoing_serial() -> None:
    body = json.dumps({"serialNo": SERIAL, "method": "040002"}).encode()
    assert json.loads(_rejected(body).reply)["serialNo"] == SERIAL


def test_push_whose_body_is_not_an_event_is_rejected() -> None:
    fields = {**_push_fields(), "logitcsInterface": seal('{"hello":"world"}', SIGN_KEY, append_key=False)}
    assert json.loads(_rejected(json.dumps(fields).encode()).reply)["code"] == "S00001"


def test_repeated_push_has_the_same_dedup_key() -> None:
    first = _parse(_push_bytes()).events[0]
    second = _parse(_push_bytes()).events[0]
    assert first.dedup_key == second.dedup_key
    assert first == second
