"""The Dockerflow routes in-process: heartbeat states, drain, version.json."""

from __future__ import annotations

import json
import os

from scrypt_helper import __version__
from scrypt_helper.core.secret_memory import dumpable


async def test_lbheartbeat_turns_503_while_draining(app):
    assert (await app.get("/__lbheartbeat__")).json() == {"status": "ok"}
    app.node.draining = True
    draining = await app.get("/__lbheartbeat__")
    assert draining.status_code == 503
    assert draining.headers["retry-after"] == "1"


async def test_heartbeat_reports_the_node(app):
    response = await app.get("/__heartbeat__")
    assert response.status_code == 200
    document = response.json()
    assert document["status"] == "ok"
    assert set(document["checks"]) == {"workers", "queue"}
    assert document["details"]["node"] == {
        "engine": "controlled",
        "lanes": 2,
        "workers": 1,
        "queue_size": 4,
        "queue_depth": 0,
        "in_flight": 0,
        "draining": False,
        # hashlib's scrypt frees its buffers out of reach; the kernel's flag as it is now.
        "wipes_hash_state": False,
        "memory_locked": False,
        "dumpable": dumpable(),
        # The answering process, and the node's count of front processes (this app: one).
        "pid": os.getpid(),
        "processes": 1,
    }


async def test_heartbeat_says_what_the_engine_does_with_hash_state(make_app, engine):
    engine.wipes_state = True
    engine.locks_memory = True
    node = (await (await make_app()).get("/__heartbeat__")).json()["details"]["node"]
    assert (node["wipes_hash_state"], node["memory_locked"]) == (True, True)


async def test_version_is_the_deployed_version_json(make_app, tmp_path):
    built = {"source": "https://example.org/scrypt-helper", "version": "9.9", "commit": "abc", "build": "42"}
    path = tmp_path / "version.json"
    path.write_text(json.dumps(built))
    assert (await (await make_app(version_file=str(path))).get("/__version__")).json() == built


async def test_version_without_a_file_names_the_package(make_app, tmp_path):
    document = (await (await make_app(version_file=str(tmp_path / "none.json"))).get("/__version__")).json()
    assert document["version"] == __version__
    assert document["commit"] == "unknown"
