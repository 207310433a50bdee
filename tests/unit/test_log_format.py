"""The request.summary line from the service's formatter is dockerflow's MozLog line, field for field."""

from __future__ import annotations

import json
import logging

from dockerflow.logging import MozlogFormatter

from scrypt_helper.log import LOGGER_NAME, ServiceFormatter


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
