"""A webhook receiver's check: ``verify_signature`` answers every malformed input, of any
type and size, with a ``SignatureError`` (never ``ValueError`` or ``TypeError``), and checks
the ``Idempotency-Key`` header against the signed body's key when asked to."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arflow.actions import Message
from arflow.adapters.http import SignatureError, WebhookAdapter, sign, verify_signature

SECRET = "whsec-Zq8pL1vK"
NOW = 1_750_000_000


def signed() -> tuple[str, str, bytes]:
    message = Message(key="wh-1", channel="webhook", action="webhook", customer_id="C1")
    body, headers = WebhookAdapter(None, secret=SECRET).request(message, timestamp=NOW)
    return headers["X-Arflow-Timestamp"], headers["X-Arflow-Signature"], body


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "now"),
    [
        (SECRET, "9" * 5_000, "v1=00", b"{}", NOW),  # int() of it raised ValueError
        (SECRET, "1" * 13, "v1=00", b"{}", NOW),
        (SECRET, "١٧٥٠٠٠٠٠٠٠", "v1=00", b"{}", NOW),  # Arabic-Indic digits
        (SECRET, "-1750000000", "v1=00", b"{}", NOW),
        (SECRET, "", "v1=00", b"{}", NOW),
        (SECRET, None, "v1=00", b"{}", NOW),
        (SECRET, NOW, "v1=00", b"{}", NOW),
        (SECRET, str(NOW).encode(), "v1=00", b"{}", NOW),
        (SECRET, str(NOW), None, b"{}", NOW),
        (SECRET, str(NOW), b"v1=00", b"{}", NOW),
        (SECRET, str(NOW), "v1=\udcff", b"{}", NOW),
        (SECRET, str(NOW), "v1=00", "{}", NOW),
        (SECRET, str(NOW), "v1=00", None, NOW),
        (SECRET, str(NOW), "v1=00", 42, NOW),
        ("", str(NOW), "v1=00", b"{}", NOW),
        (None, str(NOW), "v1=00", b"{}", NOW),
        (SECRET, str(NOW), "v1=00", b"{}", float("nan")),
        (SECRET, str(NOW), "v1=00", b"{}", "now"),
    ],
)
def test_malformed_inputs_raise_signature_error(
    secret: Any, timestamp: Any, signature: Any, body: Any, now: Any
) -> None:
    with pytest.raises(SignatureError):
        verify_signature(secret, timestamp, signature, body, now=now)


def test_a_good_signature_still_verifies_and_the_header_key_is_checked() -> None:
    stamp, signature, body = signed()
    verify_signature(SECRET, stamp, signature, body, now=NOW)
    verify_signature(SECRET, stamp, signature, bytearray(body), now=NOW, idempotency_key="wh-1")
    with pytest.raises(SignatureError, match="Idempotency-Key"):
        verify_signature(SECRET, stamp, signature, body, now=NOW, idempotency_key="wh-2")
    # a body signed correctly but without a key cannot vouch for a header
    other = b'{"no":"key"}'
    with pytest.raises(SignatureError, match="Idempotency-Key"):
        verify_signature(
            SECRET, stamp, sign(SECRET, stamp, other), other, now=NOW, idempotency_key="x"
        )


values = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.text(max_size=60),
    st.binary(max_size=60),
    st.text(alphabet="0123456789", min_size=1, max_size=6_000),
    st.lists(st.integers(), max_size=3),
)


@given(values, values, values, values)
def test_no_input_raises_anything_but_signature_error(
    timestamp: Any, signature: Any, body: Any, key: Any
) -> None:
    try:
        verify_signature(SECRET, timestamp, signature, body, now=NOW, idempotency_key=key)
    except SignatureError:
        return
    raise AssertionError("verified a signature made of noise")
