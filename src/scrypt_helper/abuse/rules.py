"""Rate-limit rules in a one-line grammar, after Firefox Accounts' customs rules.

    action : property : attempts : window : duration : policy

``action`` is ``scrypt`` (a hash computed or refused by a rule; one the node had no room for
does not count), ``request`` (any request to the API, malformed ones included) or ``bad_key``
(a request with an ``X-API-Key`` the node does not know, counted by address). ``property`` is
what is counted: ``ip``, ``ip_prefix`` (the address's first ``--ipv4-prefix`` or
``--ipv6-prefix`` bits, /24 and /56 by default) or ``api_key``. More than ``attempts`` in
``window`` triggers the ``policy``: ``block`` refuses that action from that key for
``duration`` (a ``bad_key`` block refuses every request with an ``X-API-Key`` from that
address, valid keys too); ``ban`` refuses every request from that key for ``duration`` (an
address's ban holds whatever API key a request presents); ``report`` only counts, logs and
exports a metric. Times are seconds, or a number with ``s``, ``m``, ``h`` or ``d``. Lines are
separated by newlines or ``;``; ``#`` starts a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

Action = Literal["scrypt", "request", "bad_key"]
Property = Literal["ip", "ip_prefix", "api_key"]
Policy = Literal["block", "ban", "report"]
ACTIONS: tuple[Action, ...] = ("scrypt", "request", "bad_key")
PROPERTIES: tuple[Property, ...] = ("ip", "ip_prefix", "api_key")
POLICIES: tuple[Policy, ...] = ("block", "ban", "report")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,7})([smhd]?)")

# What a single node uses when no rules are configured. A device logs in a handful of
# times an hour; a carrier NAT or office shares a /24, a household or carrier pool an IPv6
# /56; anything near a request per second from one address for a minute is a machine.
# Requests, not only hashes, are limited per prefix: one IPv6 host holds a /64 of
# addresses, each with a fresh ``ip`` budget, so only the prefix bounds its cheap requests.
# A client that holds a key sends it right the first time: a few wrong keys a minute is a
# guesser, blocked from presenting any key (its keyless requests, and its neighbours', go on).
DEFAULT_RULES = """\
scrypt  : ip        : 30   : 60s : 300s : block
scrypt  : ip_prefix : 300  : 60s : 300s : block
request : ip        : 600  : 60s : 600s : ban
request : ip_prefix : 3000 : 60s : 300s : ban
scrypt  : api_key   : 6000 : 60s : 60s : block
bad_key : ip        : 10   : 60s : 600s : block
"""


class RuleError(ValueError):
    """A rule that does not parse; the message names its line."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One parsed rule; ``name`` identifies it in metrics, logs and storage keys."""

    action: Action
    property: Property
    attempts: int
    window: int
    duration: int
    policy: Policy
    name: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        name = f"{self.action}:{self.property}:{self.attempts}/{self.window}s:{self.policy}"
        object.__setattr__(self, "name", name)  # made once: every request's counting names its rules


def parse_duration(text: str) -> int:
    """Seconds in ``60``, ``60s``, ``5m``, ``1h`` or ``1d``."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"bad duration {text.strip()!r} (use e.g. 30s, 5m, 1h)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_rules(text: str) -> tuple[Rule, ...]:
    """Parse rule text; raise RuleError naming the first bad line."""
    rules = []
    for number, line in enumerate(re.split(r"[\n;]", text), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                rules.append(_parse_line(line))
            except ValueError as exc:
                raise RuleError(f"rule {number} ({line!r}): {exc}") from None
    return tuple(rules)


def _parse_line(line: str) -> Rule:
    fields = [field.strip() for field in line.split(":")]
    if len(fields) != 6:
        raise ValueError("expected 6 fields: action : property : attempts : window : duration : policy")
    action, prop, attempts, window, duration, policy = fields
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if prop not in PROPERTIES:
        raise ValueError(f"unknown property {prop!r} (one of {', '.join(PROPERTIES)})")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
    if action == "bad_key" and prop == "api_key":
        raise ValueError("bad_key rules count addresses (ip or ip_prefix): an unknown key has no name")
    if not attempts.isascii() or not attempts.isdigit() or int(attempts) < 1:
        raise ValueError(f"attempts must be a positive integer, not {attempts!r}")
    rule = Rule(action, prop, int(attempts), parse_duration(window), parse_duration(duration), policy)  # type: ignore[arg-type]
    if rule.window < 1:
        raise ValueError("window must be at least 1 second")
    if rule.policy != "report" and rule.duration < 1:
        raise ValueError(f"a {rule.policy} needs a duration of at least 1 second")
    return rule


def rule_text(rule: Rule) -> str:
    """``rule`` in the grammar, on one line."""
    fields = (rule.action, rule.property, rule.attempts, f"{rule.window}s", f"{rule.duration}s", rule.policy)
    return " : ".join(map(str, fields))


def divided_rules(rules: tuple[Rule, ...], regions: int) -> str:
    """``rules`` with each one's attempts divided among ``regions`` (rounded down, at least one),
    as one line: each region's nodes keep their share, so that a client that hops regions gets
    no more than one budget in all (``deploy/aws``, ``RegionsSharingBudget``)."""
    if regions < 1:
        raise ValueError("regions must be at least 1")
    shares = (replace(rule, attempts=max(1, rule.attempts // regions)) for rule in rules)
    return "; ".join(rule_text(rule) for rule in shares)
