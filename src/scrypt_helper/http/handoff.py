"""What the HTTP protocol below ASGI hands the app in a request's ``scope["state"]``."""

from __future__ import annotations

# The request's id (``http.request_ids``), given once: by the protocol where it read the headers, else
# by the request-summary middleware.
REQUEST_ID = "scrypt_helper.request_id"
# Early admission's judgement of a ``POST /`` (``http.admission``): ``Admitted``, or a task of a judgement
# still going (its verdict a refusal, a ticket whose body the endpoint reads, or an admitted job).
DECISION = "scrypt_helper.decision"
