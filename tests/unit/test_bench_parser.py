"""``bench parser``'s parsing part runs and gives a figure for every body, each of the same size."""

from __future__ import annotations

from scrypt_helper.bench.parser import SIZE, hostile_bodies, outcome, parse_costs, typical_body


def test_every_body_is_the_same_size_and_only_the_padded_requests_parse():
    assert len(typical_body(SIZE)) == SIZE
    bodies = hostile_bodies(SIZE)
    assert {len(body) for body in bodies.values()} == {SIZE}
    assert outcome(typical_body(SIZE)) == 0
    assert {name for name, body in bodies.items() if outcome(body) == 0} == {
        "escaped quotes in a value",
        "unicode escapes in a value",
        "two-byte characters in a value",
    }


def test_one_round_gives_a_time_and_a_ratio_for_every_body():
    report = parse_costs(SIZE, rounds=1, batch=1)
    assert report["size"] == SIZE
    assert set(report["bodies"]) == {"typical", *hostile_bodies(SIZE)}
    for row in report["bodies"].values():
        assert row["bytes"] == SIZE
        assert row["us"] > 0
        assert row["ratio"] > 0
    assert (report["bodies"]["typical"]["errno"], report["bodies"]["typical"]["ratio"]) == (0, 1.0)
    assert report["worst"] in hostile_bodies(SIZE)
    assert report["worst_ratio"] == report["bodies"][report["worst"]]["ratio"]
