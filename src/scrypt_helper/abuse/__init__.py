"""Abuse prevention: client identity, rate-limit rules, and the shared or local counters."""

from scrypt_helper.abuse.guard import Guard, HashAttempt
from scrypt_helper.abuse.identity import ApiKeys, ClientIdentity, TrustedProxies
from scrypt_helper.abuse.rules import DEFAULT_RULES, Rule, RuleError, parse_rules
from scrypt_helper.abuse.store import LimitStore

__all__ = [
    "DEFAULT_RULES",
    "ApiKeys",
    "ClientIdentity",
    "Guard",
    "HashAttempt",
    "LimitStore",
    "Rule",
    "RuleError",
    "TrustedProxies",
    "parse_rules",
]
