"""SMS through an HTTP gateway (``sms+https://``) and signed JSON webhooks (``webhook+https://``),
with the standard library only.

SMS: one POST per recipient, the body built from a *profile* (a template whose string values
may hold ``{to}``, ``{text}``, ``{key}`` and ``{sender}``)::

    sms+https://gateway.example.com/v1/sms?token=...                 # generic JSON, bearer
    sms+https://AC123:authtoken@api.twilio.com/2010-04-01/Accounts/AC123/Messages.json?profile=twilio&from=%2B15550100
    sms+https://sms-proxy.internal/send?profile=aliyun&from=ARFLOW&token_env=SMS_TOKEN

``user:password@`` becomes HTTP basic auth, ``?token=`` (or ``?token_env=NAME``, read from the
environment) a bearer token; ``?from=`` is ``{sender}``; ``?timeout=`` is in seconds (10 by
default). These keys, and ``?profile=``, are arflow's: they are taken out of the URL the
request goes to, every other query parameter stays. The profiles (:data:`SMS_PROFILES`):

- ``generic``: JSON ``{"to", "text", "reference"}``;
- ``twilio``: form-encoded ``To``, ``From``, ``Body``, with basic auth (account SID and auth
  token in the URL);
- ``aliyun``: JSON ``PhoneNumbers``, ``SignName`` and ``TemplateParam`` (a JSON *string*
  ``{"text", "reference"}``); a 200 whose ``Code`` is not ``OK`` is a failure. Aliyun's own
  API signs each request with the AccessKey (its RPC signature): that, like every signing
  scheme beyond basic and bearer auth, is for a gateway in between or an adapter of your own
  (any object with ``deliver(message)``).

Each request carries ``Idempotency-Key: <message.key>`` (``<key>-<n>`` for the n-th of several
recipients, so each is unique and the same on every retry); ``{key}`` in a body is that key.
The provider's message id is returned when the JSON reply has ``id``, ``sid``, ``message_id`` or
``MessageId`` (``BizId`` too for ``aliyun``). With several recipients, a recipient refused
permanently while others took the message is reported in the returned reference, as the SMTP
adapter does; only when every recipient is refused is the failure raised.

Webhook: one JSON POST of the whole message (every field but ``fallbacks``, keys sorted, no
spaces: the same message gives the same bytes) to the message's own ``url`` when it has one
(a rule's ``webhook`` action), else to the adapter's::

    webhook+https://hooks.example.com/arflow?secret_env=ARFLOW_WEBHOOK_SECRET
    webhook+https://hooks.example.com/arflow?secret=s3cr3t&timeout=5

It is signed: ``X-Arflow-Timestamp: <unix seconds>`` and ``X-Arflow-Signature: v1=<hex>``, the
HMAC-SHA256 of ``"<timestamp>.<body>"`` with the shared secret; the receiver checks both with
:func:`verify_signature` on the exact bytes it received. Basic or bearer auth from the URL is
sent only to the adapter's own origin, never to another host a message names.

Failures (both): a connection error, a time-out, 5xx, 429 and 408 are temporary (retried);
a redirect (not followed: point the URL at the final address) and any other 4xx are
permanent. A 400, 404 or 422 (or an ``aliyun`` ``Code``) whose body says ``invalid``,
``not a valid`` or ``illegal`` together with ``number``, ``phone`` or ``mobile`` is reported
as ``feedback="invalid"`` for the recipient's number, so the contact's phone is marked dead.
That is a heuristic on the provider's wording, nothing more.

Passwords, tokens and the webhook secret never appear in ``repr``, an error or a log line.
"""

from __future__ import annotations

from ..errors import SignatureError
from ._http_client import DEFAULT_TIMEOUT, ID_KEYS, says_invalid
from ._sms import SMS_PROFILES, SmsHttpAdapter, SmsProfile, render, sms_from_url
from ._webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAdapter,
    sign,
    verify_signature,
    webhook_from_url,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ID_KEYS",
    "SIGNATURE_HEADER",
    "SMS_PROFILES",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "SmsHttpAdapter",
    "SmsProfile",
    "WebhookAdapter",
    "render",
    "says_invalid",
    "sign",
    "sms_from_url",
    "verify_signature",
    "webhook_from_url",
]
