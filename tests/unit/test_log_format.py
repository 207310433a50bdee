"""The request.summary line: dockerflow's MozLog line field for field, with refusals held to a budget."""

from __future__ import annotations

import asyncio
import json
import logging

from dockerflow.logging import MozlogFormatter

from scrypt_helper.observability.log import LOGGER_NAME, ServiceFormatter, SummaryLog
from tests.clock import Clock


def summary_record(**fields: object) -> logging.LogRecord:
    logger = logging.getLogger("request.summary")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, "", (), None, extra=fields)


def test_summary_lines_match_dockerflows_own():
    for fields in (
        {"agent": "curl", "path": "/", "method": "POST", "code": 200, "lang": None, "t": 12, "rid": "r1",
         "errno": 0, "queue_ms": 0.5, "hash_ms": 40.1, "batch": 8},
        {"agent": "", "path": "/", "method": "POST", "code": 503, "lang": "fr", "t": 0, "rid": "r2",
         "errno": 201, "reason": "queue_full"},
        {"agent": 'caf\u00e9 "quoted"', "path": "/__lbheartbeat__", "method": "GET", "code": 200,
         "lang": None, "t": 1, "rid": "r3"},
    ):  # fmt: skip
        record = summary_record(**fields)
        ours = json.loads(ServiceFormatter().format(record))
        theirs = json.loads(MozlogFormatter(logger_name=LOGGER_NAME).format(record))
        assert ours == theirs
        assert list(ours["Fields"]) == list(fields)


def test_other_lines_are_dockerflows():
    logger = logging.getLogger("scrypt_helper.node")
    record = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "engine %s", ("native",), None)
    line = json.loads(ServiceFormatter().format(record))
    assert line["Fields"]["msg"] == "engine native"
    assert line["Severity"] == 4


class Lines(logging.Handler):
    """The records that reach the summary and refusals loggers."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def of(self, name: str) -> list[logging.LogRecord]:
        return [record for record in self.records if record.name == name]


def write(summary: SummaryLog, code: int, rid: str | None = None) -> None:
    summary.write(
        agent=None, path="/", method="POST", code=code, lang=None, seconds=0.001, rid=rid, state={"errno": 1}
    )


def capture() -> Lines:
    lines = Lines()
    for name in ("request.summary", "request.refusals"):
        logger = logging.getLogger(name)
        logger.addHandler(lines)
        logger.setLevel(logging.INFO)
    return lines


def release(lines: Lines) -> None:
    for name in ("request.summary", "request.refusals"):
        logging.getLogger(name).removeHandler(lines)


def test_refusals_beyond_the_budget_are_counted_in_one_line_a_second():
    lines, clock = capture(), Clock()
    try:
        summary = SummaryLog(3, clock=clock)
        for code in (429, 400, 503, 429, 503, 429):
            write(summary, code)
        write(summary, 200)  # a hash always gets its line
        assert [r.code for r in lines.of("request.summary")] == [429, 400, 503, 200]
        assert all(r.rid for r in lines.of("request.summary"))  # a fresh id where none came
        assert lines.of("request.refusals") == []
        clock.now += 1.0  # the next second: its first refusal tells the last second's count
        write(summary, 400)
        (told,) = lines.of("request.refusals")
        assert (told.unlogged, told.by_code, told.per_second) == (3, {"429": 2, "503": 1}, 3)
        assert [r.code for r in lines.of("request.summary")][-1] == 400
        summary.flush()  # nothing left without a line: nothing more to tell
        assert len(lines.of("request.refusals")) == 1
    finally:
        release(lines)


def test_a_zero_budget_logs_every_refusal():
    lines = capture()
    try:
        summary = SummaryLog(0, clock=Clock())
        for _ in range(500):
            write(summary, 429, rid="r")
        summary.flush()
        assert len(lines.of("request.summary")) == 500
        assert lines.of("request.refusals") == []
    finally:
        release(lines)


def test_the_count_is_told_when_the_second_ends_without_further_refusals():
    lines = capture()

    async def flood_then_quiet() -> None:
        clock = Clock()
        summary = SummaryLog(1, clock=clock)
        write(summary, 503)  # the second's one line
        clock.advance(0.95)  # near its end: the flush is due on the loop's timer in 0.05 s
        for _ in range(4):
            write(summary, 503)
        assert lines.of("request.refusals") == []
        await asyncio.sleep(0.15)

    try:
        asyncio.run(flood_then_quiet())
        (told,) = lines.of("request.refusals")
        assert (told.unlogged, told.by_code) == (4, {"503": 4})
        assert json.loads(ServiceFormatter().format(told))["Fields"]["unlogged"] == 4
    finally:
        release(lines)


def test_uvicorns_coloured_copy_of_a_message_never_reaches_a_line():
    logger = logging.getLogger("uvicorn.error")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "Started server process [%d]", (7,), None,
        extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
    )  # fmt: skip
    line = ServiceFormatter().format(record)
    assert "color_message" not in line
    assert "\\u001b" not in line
    assert "\x1b" not in line
    assert json.loads(line)["Fields"]["msg"] == "Started server process [7]"


def test_clients_gone_499_are_refusals_held_to_the_budget():
    lines = capture()
    try:
        summary = SummaryLog(2, clock=Clock())
        for _ in range(5):
            write(summary, 499)
        assert len(lines.of("request.summary")) == 2
        summary.flush()
        (told,) = lines.of("request.refusals")
        assert told.by_code == {"499": 3}
    finally:
        release(lines)
