"""msg_signature: the official vectors and the failure modes."""

from __future__ import annotations

import hashlib

import pytest

from app.wecom.errors import ComputeSignatureError, SignatureError
from app.wecom.signature import compute_signature, verify_signature

from .samples import OFFICIAL_DOC_POST, OFFICIAL_VECTORS


@pytest.mark.parametrize("name", sorted(OFFICIAL_VECTORS))
def test_official_vectors(name: str) -> None:
    v = OFFICIAL_VECTORS[name]
    assert compute_signature(v.token, v.timestamp, v.nonce, v.encrypted) == v.msg_signature
    verify_signature(v.token, v.timestamp, v.nonce, v.encrypted, v.msg_signature)


def test_doc_worked_example_sorts_then_concatenates() -> None:
    v = OFFICIAL_DOC_POST
    # the doc's sort_str: nonce < timestamp < Token < Encrypt in plain code-point order
    sort_str = "1372623149" + "1409659813" + "QDG6eK" + v.encrypted
    assert hashlib.sha1(sort_str.encode()).hexdigest() == v.msg_signature


def test_argument_order_does_not_matter() -> None:
    assert compute_signature("a", "b", "c", "d") == compute_signature("d", "c", "b", "a")


def test_non_ascii_values_are_signed_as_utf8() -> None:
    expected = hashlib.sha1("1btok中文".encode()).hexdigest()  # "中" sorts after ASCII
    assert compute_signature("tok", "1", "b", "中文") == expected


def test_uppercase_signature_is_accepted() -> None:
    v = OFFICIAL_DOC_POST
    verify_signature(v.token, v.timestamp, v.nonce, v.encrypted, v.msg_signature.upper())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0" * 40,
        OFFICIAL_DOC_POST.msg_signature[:-1],
        OFFICIAL_DOC_POST.msg_signature + "0",
        "４77715d11cdb4164915debcba66cb864d751f3e6",  # a full-width digit
        None,
    ],
)
def test_wrong_signature(bad: str | None) -> None:
    v = OFFICIAL_DOC_POST
    with pytest.raises(SignatureError) as info:
        verify_signature(v.token, v.timestamp, v.nonce, v.encrypted, bad)  # type: ignore[arg-type]
    assert info.value.code == -40001
    assert info.value.http_status == 403


def test_every_signed_value_matters() -> None:
    v = OFFICIAL_DOC_POST
    for args in [
        ("QDG6eL", v.timestamp, v.nonce, v.encrypted),
        (v.token, "1409659814", v.nonce, v.encrypted),
        (v.token, v.timestamp, "1372623148", v.encrypted),
        (v.token, v.timestamp, v.nonce, v.encrypted[:-3] + "A=="),
    ]:
        with pytest.raises(SignatureError):
            verify_signature(*args, v.msg_signature)


@pytest.mark.parametrize("timestamp", [None, "\ud800"])
def test_unsignable_input_is_the_official_compute_error(timestamp: str | None) -> None:
    with pytest.raises(ComputeSignatureError) as info:
        compute_signature("tok", timestamp, "1", "x")  # type: ignore[arg-type]
    assert info.value.code == -40003
