import pytest

from carriers.ems.envelope import EnvelopeError, open_, seal

VECTORS = [
    (
        '{"language":"zh-CN","orderId":"QIAO-20200618-004"}',
        "TvaBgrhE46sft3nZlfe7xw==",
        "|$4|efB6PnjDpgHG4xfrvYlXonyBuMJoGTynkfasopHvbl2u3nmNeP+rznA3DyRwb/2GeZL7I3rL6HKD5+Tv3Uy6x8jIDISbYG8Bg14caH2flYE=",
    ),
    (
        '[{"wholeAddress":"ABC123"}]',
        "WjNoNmhXWE12SFZJdk0zWQ==",
        "|$4|slRLUixzb1DplJxnGKMG5tcXh0zH5Ry1qZAIemYxDc7VfSxow31WUmgLbzbJt996Ud/vpaVOMcwyqsLvQRXPaA==",
    ),
]


@pytest.mark.parametrize(("plain", "key", "sealed"), VECTORS)
def test_seal_matches_published_vector(plain: str, key: str, sealed: str) -> None:
    assert seal(plain, key) == sealed


@pytest.mark.parametrize(("plain", "key", "sealed"), VECTORS)
def test_open_reverses_published_vector(plain: str, key: str, sealed: str) -> None:
    assert open_(sealed, key) == plain


def test_push_bodies_round_trip_without_key_suffix() -> None:
    key = "TvaBgrhE46sft3nZlfe7xw=="
    event = '{"waybillNo":"1295780512499","opCode":"704","opName":"投递结果反馈-妥投"}'
    assert open_(seal(event, key, append_key=False), key) == event


def test_wrong_key_is_refused() -> None:
    sealed = seal('{"a":1}', "TvaBgrhE46sft3nZlfe7xw==")
    with pytest.raises(EnvelopeError):
        open_(sealed, "WjNoNmhXWE12SFZJdk0zWQ==")
