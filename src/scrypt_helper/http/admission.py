"""The one judgement of ``POST /``: its head gives a refusal or a ticket, its body a refusal or an
admitted job, whichever layer reads the bytes.

No transport here. The HTTP protocol below ASGI (``http.protocol_admission``) and the ASGI endpoint
(``http.routes.scrypt``) both call ``Admission`` and hand its result on; nothing after it judges again.
A refusal is an ``ApiError`` (its ``reason`` names the rule or the scheduler's cause), for the one
encoder of ``http.answers`` to write. Each judgement is a coroutine that waits for nothing when
the limits live in memory, so a caller that cannot await runs it with ``eager.run_eagerly``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from scrypt_helper.abuse import ApiKeys, ClientIdentity, HashAttempt, TrustedProxies
from scrypt_helper.abuse.identity import API_KEY_HEADER, PrefixLengths
from scrypt_helper.core import errors, scrypt_request
from scrypt_helper.core.config import Settings
from scrypt_helper.core.errors import ApiError
from scrypt_helper.core.node import Node
from scrypt_helper.core.scheduler import HeldPlace, Rejected
from scrypt_helper.http.request_ids import request_id

API_KEY = API_KEY_HEADER.lower().encode()


@dataclass(slots=True)
class RequestHead:
    """What the judgement reads of a request's head, found in one pass over its header list."""

    peer: str | None
    request_id: str = ""
    content_length: bytes | None = None
    content_type: bytes | None = None
    origin: bytes | None = None
    api_key: bytes | None = None
    forwarded_for: list[str] = field(default_factory=list)  # every line, in order
    expects_continue: bool = False  # ``Expect: 100-continue``
    user_agent: str | None = None  # for the summary line
    accept_language: str | None = None

    @classmethod
    def read(
        cls, raw: Sequence[tuple[bytes, bytes]], peer: str | None, known_id: str | None = None
    ) -> RequestHead:
        """The head of lower-case ``raw`` headers from ``peer``; ``known_id``: the id a layer before
        gave the request (else its own ``X-Request-Id`` if well formed, else a fresh one)."""
        head = cls(peer)
        sent_id = None
        for name, value in raw:
            if name == b"content-length":
                head.content_length = value
            elif name == b"content-type":
                head.content_type = value
            elif name == b"origin":
                head.origin = value
            elif name == b"x-forwarded-for":
                head.forwarded_for.append(value.decode("latin-1"))
            elif name == API_KEY:
                head.api_key = value
            elif name == b"x-request-id":
                sent_id = value
            elif name == b"user-agent":
                head.user_agent = value.decode("latin-1")
            elif name == b"accept-language":
                head.accept_language = value.decode("latin-1")
            elif name == b"expect":
                head.expects_continue = value.lower() == b"100-continue"
        head.request_id = known_id or request_id(sent_id)
        return head


@dataclass(slots=True)
class Ticket:
    """A request whose head was let through: who sent it, and when its judgement began."""

    head: RequestHead
    client: ClientIdentity
    started: float


@dataclass(slots=True)
class Admitted:
    """A valid request let through: its job, the place the queue keeps for it, its hash attempt."""

    ticket: Ticket
    job: scrypt_request.Job
    place: HeldPlace
    attempt: HashAttempt


HeadVerdict = ApiError | Ticket
BodyVerdict = ApiError | Admitted


class Admission:
    """Judges ``POST /`` for ``node``: each refusal as early as its reason is known."""

    def __init__(self, node: Node) -> None:
        self.node = node
        settings = node.settings
        self.max_body_bytes = settings.max_body_bytes
        self.scrypt_params = settings.scrypt_params
        self.cors_origins = settings.cors_origins
        self.identifier = ClientIdentifier.of(settings)

    async def judge_head(self, head: RequestHead) -> HeadVerdict:
        """Deny list, bans, blocks and the ``request`` rules (``Guard.admit_head``: a client blocked
        by a ``scrypt`` rule is counted all the same, so its flood trips bans); a browser's origin
        and type, a queue that could not start the job in time, a declared body over the limit."""
        started = time.perf_counter()
        node = self.node
        key = None if head.api_key is None else head.api_key.decode("latin-1")
        client = self.identifier.identify(head.peer, head.forwarded_for, key)
        try:
            await node.guard.admit_head(client)
            check_browser(head, self.cors_origins)
            node.scheduler.check_admission()
        except ApiError as error:
            return error
        except Rejected as exc:
            return self._unavailable(exc)
        declared = head.content_length
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return errors.body_too_large(self.max_body_bytes)
        return Ticket(head, client, started)

    async def judge_body(self, ticket: Ticket, body: bytes) -> BodyVerdict:
        """The whole body: over the limit, not a valid request, the ``scrypt`` rules, then a place
        in the queue, kept for the job until it is queued (``Scheduler.submit(place=...)``)."""
        if len(body) > self.max_body_bytes:
            return self.too_large()
        node = self.node
        try:
            job = scrypt_request.parse_request(body, self.scrypt_params)
            attempt = await node.guard.admit_scrypt(ticket.client)
        except ApiError as error:
            return error
        try:
            place = node.scheduler.hold_place(job.params)
        except Rejected as exc:
            attempt.forget()
            return self._unavailable(exc)
        return Admitted(ticket, job, place, attempt)

    def too_large(self) -> ApiError:
        """A body found over the limit while it comes."""
        return errors.body_too_large(self.max_body_bytes)

    def _unavailable(self, exc: Rejected) -> ApiError:
        self.node.metrics.count_rejection(exc.reason)
        return errors.service_unavailable(str(exc), self.node.scheduler.retry_after, exc.reason)


@dataclass(frozen=True, slots=True)
class ClientIdentifier:
    """Who sent a request, by the settings' trusted proxies, prefix lengths and API keys, read once
    (each settings attribute is a model lookup, and this runs for every request to ``/``)."""

    trusted_proxies: TrustedProxies
    prefix_lengths: PrefixLengths
    api_keys: ApiKeys

    @classmethod
    def of(cls, settings: Settings) -> ClientIdentifier:
        return cls(settings.trusted_proxies, settings.prefix_lengths, settings.api_keys)

    def identify(
        self, peer: str | None, forwarded_for: Sequence[str], presented_key: str | None
    ) -> ClientIdentity:
        """The client behind a request from ``peer``; an unknown API key is marked, to be counted
        and refused (401). ``forwarded_for`` holds every line of the header, in order: a proxy
        may add its own line after the client's."""
        ip = self.trusted_proxies.client_ip(peer, forwarded_for)
        if presented_key is None:
            return ClientIdentity(ip, prefix_lengths=self.prefix_lengths)
        name = self.api_keys.name_of(presented_key)
        return ClientIdentity(ip, api_key=name, prefix_lengths=self.prefix_lengths, unknown_key=name is None)


def check_browser(head: RequestHead, origins: Sequence[str]) -> None:
    """Refuse a browser's cross-origin POST unless its origin is allowed and its body is JSON.

    Browsers send ``Origin`` with every cross-origin request, and send a text/plain, form or
    multipart POST without asking first (no CORS preflight): without this check any page could
    make its visitors' browsers hash. A JSON body needs a preflight, which CORS answers for the
    same origins. Native clients send no ``Origin`` and keep the 2013 behaviour: their body is
    read as JSON whatever its content type.
    """
    if head.origin is None:
        return
    if "*" not in origins and head.origin.decode("latin-1") not in origins:
        raise errors.origin_not_allowed()
    if not is_json(head.content_type):
        raise errors.unsupported_media_type()


def is_json(content_type: bytes | None) -> bool:
    """``application/json``, alone or with a charset, in any case."""
    if content_type is None:
        return False
    essence, *parameters = content_type.decode("latin-1").split(";")
    return essence.strip().lower() == "application/json" and all(
        parameter.strip().lower().startswith("charset=") for parameter in parameters if parameter.strip()
    )
