"""The rule grammar: every field accepted and rejected, and the default set."""

from __future__ import annotations

import pytest

from scrypt_helper.abuse.rules import DEFAULT_RULES, Rule, RuleError, parse_duration, parse_rules


def test_a_rule_with_every_field():
    assert parse_rules("scrypt : ip : 30 : 60s : 300s : block") == (
        Rule("scrypt", "ip", 30, 60, 300, "block"),
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("60", 60), ("60s", 60), ("5m", 300), ("2h", 7200), ("1d", 86400)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1w", "-5s", "1.5m", "m", "5 m", "99999999"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_lines_split_on_newlines_and_semicolons_with_comments_and_blanks():
    text = (
        "# limits\nscrypt:ip:1:1:1:block ; request:ip_prefix:2:2m:0:report\n"
        "\n  scrypt:api_key:3:1h:1d:ban # keys\n"
    )
    assert [
        (r.action, r.property, r.attempts, r.window, r.duration, r.policy) for r in parse_rules(text)
    ] == [
        ("scrypt", "ip", 1, 1, 1, "block"),
        ("request", "ip_prefix", 2, 120, 0, "report"),
        ("scrypt", "api_key", 3, 3600, 86400, "ban"),
    ]


def test_bad_key_rules_count_addresses():
    assert parse_rules("bad_key : ip : 10 : 1m : 10m : block; bad_key : ip_prefix : 50 : 1m : 1h : ban") == (
        Rule("bad_key", "ip", 10, 60, 600, "block"),
        Rule("bad_key", "ip_prefix", 50, 60, 3600, "ban"),
    )


def test_empty_text_means_no_rules():
    assert parse_rules("") == ()
    assert parse_rules(" ; # nothing\n") == ()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("scrypt : ip : 30 : 60s : 300s", "expected 6 fields"),
        ("login : ip : 30 : 60s : 300s : block", "unknown action 'login'"),
        ("scrypt : email : 30 : 60s : 300s : block", "unknown property 'email'"),
        ("scrypt : ip : 30 : 60s : 300s : delay", "unknown policy 'delay'"),
        ("scrypt : ip : 0 : 60s : 300s : block", "attempts must be a positive integer"),
        ("scrypt : ip : x : 60s : 300s : block", "attempts must be a positive integer"),
        ("scrypt : ip : 30 : 0s : 300s : block", "window must be at least 1 second"),
        ("scrypt : ip : 30 : 60s : 0 : ban", "a ban needs a duration"),
        ("scrypt : ip : 30 : soon : 300s : block", "bad duration 'soon'"),
        ("bad_key : api_key : 5 : 60s : 300s : block", "bad_key rules count addresses"),
    ],
)
def test_a_bad_rule_names_its_line(line, message):
    with pytest.raises(RuleError, match=message) as caught:
        parse_rules(f"scrypt : ip : 1 : 1s : 1s : block\n{line}")
    assert str(caught.value).startswith("rule 2 ")


def test_the_default_set_parses_and_covers_every_property():
    rules = parse_rules(DEFAULT_RULES)
    assert {rule.property for rule in rules} == {"ip", "ip_prefix", "api_key"}
    assert {rule.action for rule in rules} == {"scrypt", "request", "bad_key"}
    assert len({rule.name for rule in rules}) == len(rules)
