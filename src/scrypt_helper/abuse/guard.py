"""Decide, before any hash, whether a client may be served: lists, bans, blocks and rate limits."""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import RateLimiter

from scrypt_helper.abuse.identity import ClientIdentity, IPNetwork
from scrypt_helper.abuse.rules import ACTIONS, Action, Rule
from scrypt_helper.abuse.store import LimitStore, Operation, StoreUnavailable
from scrypt_helper.core import errors

# Clients early admission remembers as refused; beyond it the least recently refused go through the guard.
MAX_PENALTIES = 10_000

logger = logging.getLogger("scrypt_helper.abuse")
# Called with (rule label, policy) for every request a rule refuses or reports.
DecisionObserver = Callable[[str, str], None]
# A rule with the client's key it counts.
Keyed = tuple[Rule, str]
# Why a request is refused: the rule's label, its policy, and seconds until it lifts.
Refusal = tuple[str, str, float]


class Guard:
    """Applies allow and deny lists, bans, blocks and the rate-limit rules to a client."""

    def __init__(
        self,
        rules: Sequence[Rule],
        store: LimitStore,
        *,
        allowlist: Sequence[IPNetwork] = (),
        denylist: Sequence[IPNetwork] = (),
        on_decision: DecisionObserver | None = None,
    ) -> None:
        self.rules = tuple(dict.fromkeys(rules))  # a rule given twice counts once
        self.store = store
        self.allowlist = tuple(allowlist)
        self.denylist = tuple(denylist)
        self._observe = on_decision or (lambda rule, policy: None)
        self._items = {rule: RateLimitItemPerSecond(rule.attempts, rule.window) for rule in self.rules}
        self._by_action = {
            action: [rule for rule in self.rules if rule.action == action] for action in ACTIONS
        }
        # Bans come only from ``ban`` rules: a node with none looks none up, and a request no rule
        # counts then costs no trip to the store.
        self._bans = any(rule.policy == "ban" for rule in self.rules)
        # A guard with no deny list and no rule that looks at a request refuses only unknown keys.
        self._judges_requests = bool(self.denylist) or any(
            rule.action in ("request", "bad_key") or rule.policy == "ban" for rule in self.rules
        )
        # The refusals this node gave, each until its block or ban ends: early admission of ``/`` refuses
        # a client's next hashes from here, with no store trip and no body read. Bounded, LRU.
        # Each with its end, rule label, policy, and whether the client's requests still count
        # against the ``request`` rules (a ``scrypt`` rule's block refuses hashes only).
        self._penalties: collections.OrderedDict[ClientIdentity, tuple[float, str, str, bool]] = (
            collections.OrderedDict()
        )
        # Hashes each scrypt rule and key admitted that are neither computed nor refused yet. Only
        # requests in flight have an entry, so the table is bounded by the queue.
        self._in_flight: collections.Counter[Keyed] = collections.Counter()

    def allowed(self, client: ClientIdentity) -> bool:
        return client.within(self.allowlist)

    def denied(self, client: ClientIdentity) -> bool:
        """Whether the deny list refuses ``client`` (403), counted as a decision; synchronous."""
        if not self.denylist or self.allowed(client) or not client.within(self.denylist):
            return False
        self._observe("denylist", "deny")
        return True

    async def admit_request(self, client: ClientIdentity) -> None:
        """Any API request: deny list, bans, key blocks, the ``request`` rules, then an unknown key.

        Raises ApiError to refuse: 403 on the deny list, 429 for a ban, a block or a rule, 401 for
        an unknown API key once it has been counted against the address. Counted in this process's
        memory and shared at the store's next sync: it waits for nothing (``http.eager``).
        """
        if not self._judges_requests:
            if client.unknown_key:
                raise errors.invalid_api_key()
            return
        if not self.allowed(client):
            if self.denied(client):
                raise errors.forbidden()
            counted = self._keyed(client, "request")
            # From an address blocked for wrong keys, every key is refused, a right guess too.
            blocks = [*counted, *(self._keyed(client, "bad_key") if client.presents_key else ())]
            if client.unknown_key:
                counted = blocks
            if self._bans or blocks or counted:
                self._refuse(
                    client, await self._run(self._decide_request(client, blocks, counted), shared=True)
                )
        if client.unknown_key:
            raise errors.invalid_api_key()

    async def admit_head(self, client: ClientIdentity) -> None:
        """``admit_request`` for a request whose head is all that is known, from this node's memory
        where it can be: a ban, or a block of a ``request`` rule, this node gave and that is still
        in force refuses with no store trip (``admit_request`` would refuse it uncounted too). A
        block of a ``scrypt`` rule refuses only hashes: the request is counted against the
        ``request`` rules first, so that its flood still trips their blocks and bans."""
        entry = self._penalties.get(client) if self._penalties else None
        if entry is not None and not entry[3] and (refused := self.penalty(client)) is not None:
            raise refused
        await self.admit_request(client)
        if entry is not None and (refused := self.penalty(client)) is not None:
            raise refused

    async def admit_scrypt(self, client: ClientIdentity) -> HashAttempt:
        """A valid hash request: blocks, then the ``scrypt`` rules. Raises ApiError to refuse.

        The rules count hashes computed and hashes admitted but not yet done, so that concurrent
        requests cannot overrun them; with Redis, the computed ones in Redis, shared by every node.
        The caller settles the attempt it gets back: a computed hash counts, one the scheduler
        refused (queue full, deadline, draining) does not.
        """
        rules = [] if self.allowed(client) else self._keyed(client, "scrypt")
        attempt = HashAttempt(self, rules)
        if not rules:
            return attempt
        self._in_flight.update(rules)  # before any await, so concurrent requests see this one
        try:
            refused = await self._run(self._decide_hash(rules))
        except BaseException:
            attempt.forget()
            raise
        if refused is not None:
            attempt.forget()
            self._refuse(client, refused, hashes_only=True)
        return attempt

    def _keyed(self, client: ClientIdentity, action: Action) -> list[Keyed]:
        """The rules of ``action`` that count this client, each with the client's key."""
        return [(rule, key) for rule in self._by_action[action] if (key := _key(client, rule))]

    def _decide_request(
        self, client: ClientIdentity, blocks: list[Keyed], counted: list[Keyed]
    ) -> Operation[Refusal | None]:
        async def decide(storage: Storage, limiter: RateLimiter) -> Refusal | None:
            for prop, key in _ban_keys(client) if self._bans else ():
                if (left := await _seconds_left(storage, f"ban:{prop}:{key}")) > 0:
                    return f"ban:{prop}", "ban", left
            if refused := await _blocked(storage, blocks):
                return refused
            for rule, key in counted:
                hit = await limiter.hit(self._items[rule], rule.name, key)
                if not hit and (refused := await self._trip(storage, rule, key)):
                    return refused
            return None

        return decide

    def _decide_hash(self, rules: list[Keyed]) -> Operation[Refusal | None]:
        async def decide(storage: Storage, limiter: RateLimiter) -> Refusal | None:
            if refused := await _blocked(storage, rules):
                return refused
            for rule, key in rules:
                # Room for this hash and every other one in flight for the same key?
                if await limiter.test(self._items[rule], rule.name, key, cost=self._in_flight[rule, key]):
                    continue
                if refused := await self._trip(storage, rule, key):
                    return refused
            return None

        return decide

    async def _count_hash(self, rules: Sequence[Keyed]) -> None:
        """Count a computed hash against its rules (a block or ban it trips holds from now on)."""

        async def count(storage: Storage, limiter: RateLimiter) -> None:
            for rule, key in rules:
                # Full only when other nodes admitted hashes of this client meanwhile; a report
                # was already made when the rule refused or reported this one.
                if not await limiter.hit(self._items[rule], rule.name, key) and rule.policy != "report":
                    await self._trip(storage, rule, key)

        with contextlib.suppress(StoreUnavailable):  # failing closed refuses the next request instead
            await self.store.run(count)

    async def _trip(self, storage: Storage, rule: Rule, key: str) -> Refusal | None:
        """Apply ``rule``'s policy to ``key``: a refusal for a block or ban, None for a report."""
        if rule.policy == "report":
            if await storage.incr(f"report:{rule.name}:{key}", rule.window) == 1:
                self._log(rule, key, "report")
            self._observe(rule.name, "report")
            return None
        marker = f"ban:{rule.property}:{key}" if rule.policy == "ban" else f"block:{rule.name}:{key}"
        if await storage.incr(marker, rule.duration) == 1:
            self._log(rule, key, rule.policy)
        return rule.name, rule.policy, float(rule.duration)

    async def _run(self, operation: Operation[Refusal | None], *, shared: bool = False) -> Refusal | None:
        """``operation`` on the store (``shared``: on this process's counts, traded at the next sync);
        503 where the store refuses while Redis is down."""
        try:
            return await (self.store.run_shared if shared else self.store.run)(operation)
        except StoreUnavailable:
            raise errors.service_unavailable("rate-limit storage unavailable", 1) from None

    def penalty(self, client: ClientIdentity) -> errors.ApiError | None:
        """The 429 of a block or ban this node refused ``client`` for that is still in force, counted
        as a refusal; None when there is none. Synchronous: no store is asked."""
        entry = self._penalties.get(client)
        if entry is None:
            return None
        until, label, policy, _ = entry
        left = until - time.monotonic()
        if left <= 0:
            del self._penalties[client]
            return None
        self._observe(label, policy)
        return errors.too_many_requests(left, label)

    def _refuse(self, client: ClientIdentity, refused: Refusal | None, *, hashes_only: bool = False) -> None:
        """Refuse with 429 and keep the refusal until it ends, for ``penalty`` (bounded, LRU);
        ``hashes_only``: a ``scrypt`` rule's block, under which requests still count."""
        if refused is not None:
            label, policy, seconds = refused
            self._observe(label, policy)
            counts = hashes_only and policy == "block"
            self._penalties[client] = (time.monotonic() + seconds, label, policy, counts)
            self._penalties.move_to_end(client)
            if len(self._penalties) > MAX_PENALTIES:
                self._penalties.popitem(last=False)
            raise errors.too_many_requests(seconds, label)

    @staticmethod
    def _log(rule: Rule, key: str, policy: str) -> None:
        logger.warning(
            "%s %s for %s s by rule %s",
            policy,
            rule.property,
            rule.duration,
            rule.name,
            extra={"policy": policy, "property": rule.property, "key": key, "rule": rule.name},
        )


class HashAttempt:
    """A hash the ``scrypt`` rules admitted: counted once computed, forgotten if it never was."""

    def __init__(self, guard: Guard, rules: Sequence[Keyed]) -> None:
        self._guard = guard
        self._rules = tuple(rules)
        self._open = bool(self._rules)

    async def settle(self, *, computed: bool) -> None:
        """Count the hash if it was computed (or may have been); either way it is no longer in flight."""
        if not self._open:
            return
        try:
            if computed:
                await self._guard._count_hash(self._rules)
        finally:
            self.forget()

    def forget(self) -> None:
        """Take the hash out of the count of hashes in flight, counting nothing."""
        if self._open:
            self._open = False
            in_flight = self._guard._in_flight
            in_flight.subtract(self._rules)
            for keyed in self._rules:
                if in_flight[keyed] <= 0:
                    del in_flight[keyed]


def _key(client: ClientIdentity, rule: Rule) -> str | None:
    """The client's key for a rule; ``bad_key`` rules count the address whatever key is sent."""
    if rule.action == "bad_key":
        return client.ip_prefix if rule.property == "ip_prefix" else client.address
    return client.key(rule.property)


def _ban_keys(client: ClientIdentity) -> list[tuple[str, str]]:
    """Where this client's bans are kept: its address and prefix, whatever key it sends, and its key."""
    keys = [("ip", client.address), ("ip_prefix", client.ip_prefix)]
    if client.api_key is not None:
        keys.append(("api_key", client.api_key))
    return keys


async def _blocked(storage: Storage, rules: Sequence[Keyed]) -> Refusal | None:
    """The first block in force for these rules, if any."""
    for rule, key in rules:
        if rule.policy == "block" and (left := await _seconds_left(storage, f"block:{rule.name}:{key}")) > 0:
            return rule.name, "block", left
    return None


async def _seconds_left(storage: Storage, marker: str) -> float:
    if await storage.get(marker) <= 0:
        return 0.0
    return max(0.0, await storage.get_expiry(marker) - time.time())
