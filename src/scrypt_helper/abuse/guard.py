"""Decide, before any hash, whether a client may be served: lists, bans, blocks and rate limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import RateLimiter

from scrypt_helper import errors
from scrypt_helper.abuse.identity import ClientIdentity, IPNetwork
from scrypt_helper.abuse.rules import Action, Rule
from scrypt_helper.abuse.store import LimitStore, StoreUnavailable

logger = logging.getLogger("scrypt_helper.abuse")
# Called with (rule label, policy) for every request a rule refuses or reports.
DecisionObserver = Callable[[str, str], None]


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
        self.rules = tuple(rules)
        self.store = store
        self.allowlist = tuple(allowlist)
        self.denylist = tuple(denylist)
        self._observe = on_decision or (lambda rule, policy: None)
        self._items = {rule: RateLimitItemPerSecond(rule.attempts, rule.window) for rule in self.rules}

    def allowed(self, client: ClientIdentity) -> bool:
        return any(client.ip in net for net in self.allowlist)

    async def admit_request(self, client: ClientIdentity) -> None:
        """Any API request: deny list, bans, then the ``request`` rules. Raises ApiError to refuse."""
        if self.allowed(client):
            return
        if any(client.ip in net for net in self.denylist):
            self._observe("denylist", "deny")
            raise errors.forbidden()
        await self._guarded(client, "request", check_bans=True)

    async def admit_scrypt(self, client: ClientIdentity) -> None:
        """A valid hash request: blocks, then the ``scrypt`` rules. Raises ApiError to refuse."""
        if not self.allowed(client):
            await self._guarded(client, "scrypt", check_bans=False)

    async def _guarded(self, client: ClientIdentity, action: Action, *, check_bans: bool) -> None:
        rules = [
            (rule, key) for rule in self.rules if rule.action == action and (key := client.key(rule.property))
        ]
        if not rules and not check_bans:
            return

        async def decide(storage: Storage, limiter: RateLimiter) -> tuple[str, str, float] | None:
            if check_bans:
                for prop in ("ip", "ip_prefix", "api_key"):
                    key = client.key(prop)
                    if key and (left := await _seconds_left(storage, f"ban:{prop}:{key}")) > 0:
                        return f"ban:{prop}", "ban", left
            for rule, key in rules:
                if (
                    rule.policy == "block"
                    and (left := await _seconds_left(storage, f"block:{rule.name}:{key}")) > 0
                ):
                    return rule.name, "block", left
            for rule, key in rules:
                if await limiter.hit(self._items[rule], rule.name, key):
                    continue
                if rule.policy == "report":
                    if await storage.incr(f"report:{rule.name}:{key}", rule.window) == 1:
                        self._log(rule, key, "report")
                    self._observe(rule.name, "report")
                    continue
                marker = f"ban:{rule.property}:{key}" if rule.policy == "ban" else f"block:{rule.name}:{key}"
                if await storage.incr(marker, rule.duration) == 1:
                    self._log(rule, key, rule.policy)
                return rule.name, rule.policy, float(rule.duration)
            return None

        try:
            refused = await self.store.run(decide)
        except StoreUnavailable:
            raise errors.service_unavailable("rate-limit storage unavailable", 1) from None
        if refused is not None:
            label, policy, seconds = refused
            self._observe(label, policy)
            raise errors.too_many_requests(seconds)

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


async def _seconds_left(storage: Storage, marker: str) -> float:
    if await storage.get(marker) <= 0:
        return 0.0
    return max(0.0, await storage.get_expiry(marker) - time.time())
