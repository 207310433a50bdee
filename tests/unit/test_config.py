"""Settings come from SCRYPT_HELPER_* variables and serve flags of the same names."""

from __future__ import annotations

import ipaddress
import json

import pytest
from pydantic import ValidationError

from scrypt_helper.abuse.identity import TrustedProxies, parse_networks
from scrypt_helper.cli.arguments import settings_from_args
from scrypt_helper.cli.main import build_parser
from scrypt_helper.core.config import DEFAULT_ALLOWED_PARAMS, Settings, default_workers
from scrypt_helper.engines.vectors import PICL_PARAMS


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("SCRYPT_HELPER_"):
            monkeypatch.delenv(name)


def serve_settings(*flags: str) -> Settings:
    return settings_from_args(build_parser().parse_args(["serve", *flags]))


def test_defaults_need_no_external_service():
    settings = Settings()
    assert (settings.host, settings.port, settings.engine) == ("127.0.0.1", 8080, "auto")
    assert settings.workers == default_workers()
    assert settings.queue_size is None
    assert settings.scrypt_params == (PICL_PARAMS,)
    assert settings.allowed_params == DEFAULT_ALLOWED_PARAMS
    assert settings.cors_origins == ("*",)
    assert settings.max_body_bytes == 4096


def test_every_setting_has_a_flag_of_the_same_name():
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]
    flags = {option for action in serve._actions for option in action.option_strings}
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in flags


def test_environment_is_read(monkeypatch):
    monkeypatch.setenv("SCRYPT_HELPER_PORT", "9000")
    monkeypatch.setenv("SCRYPT_HELPER_QUEUE_SIZE", "7")
    monkeypatch.setenv("SCRYPT_HELPER_MAX_QUEUE_WAIT", "0.5")
    monkeypatch.setenv("SCRYPT_HELPER_LOG_LEVEL", "debug")
    monkeypatch.setenv("SCRYPT_HELPER_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert (settings.port, settings.queue_size, settings.max_queue_wait) == (9000, 7, 0.5)
    assert settings.log_level == "DEBUG"
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_proxies_lists_and_keys_are_parsed_once_into_typed_values(monkeypatch):
    monkeypatch.setenv("SCRYPT_HELPER_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8")
    monkeypatch.setenv("SCRYPT_HELPER_DENYLIST", "192.0.2.0/24")
    settings = serve_settings("--allowlist", "127.0.0.1/32", "--api-keys", "partner:0123456789abcdef")
    assert settings.trusted_proxies == TrustedProxies(networks=parse_networks("10.0.0.0/8, fd00::/8"))
    assert settings.denylist == (ipaddress.ip_network("192.0.2.0/24"),)
    assert settings.allowlist == (ipaddress.ip_network("127.0.0.1/32"),)
    assert settings.api_keys.name_of("0123456789abcdef") == "partner"
    assert Settings(trusted_proxies="2").trusted_proxies == TrustedProxies(hops=2)
    monkeypatch.delenv("SCRYPT_HELPER_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == TrustedProxies(hops=0)
    assert not Settings().api_keys


@pytest.mark.parametrize(
    "flags", [["--trusted-proxies", "10.0.0.0/33"], ["--allowlist", "nope"], ["--denylist", "10.0.0.1/8, x"]]
)
def test_a_bad_network_stops_start_up(flags):
    with pytest.raises(ValidationError):
        serve_settings(*flags)


def test_flags_override_environment(monkeypatch):
    monkeypatch.setenv("SCRYPT_HELPER_WORKERS", "3")
    monkeypatch.setenv("SCRYPT_HELPER_ENGINE", "hashlib")
    settings = serve_settings("--workers", "5")
    assert settings.workers == 5
    assert settings.engine == "hashlib"


def test_allowed_params_is_a_json_list():
    allowed = [
        {"salt": "a", "N": 1024, "r": 8, "p": 1, "buflen": 32},
        {"salt": "b", "N": 16, "r": 1, "p": 2, "buflen": 64},
    ]
    settings = serve_settings("--allowed-params", json.dumps(allowed))
    assert [(p.salt, p.n, p.p, p.buflen) for p in settings.scrypt_params] == [
        (b"a", 1024, 1, 32),
        (b"b", 16, 2, 64),
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["--engine", "turbo"],
        ["--workers", "0"],
        ["--port", "70000"],
        ["--max-queue-wait", "0"],
        ["--log-level", "chatty"],
        ["--allowed-params", "[]"],
        ["--allowed-params", "not json"],
        ["--allowed-params", '[{"salt": "a", "N": 1000, "r": 8, "p": 1, "buflen": 32}]'],
        ["--allowed-params", '[{"salt": "a", "N": 1024, "r": 8, "p": 1}]'],
        ["--allowed-params", '[{"salt": "a", "N": 1024, "r": 8, "p": 1, "buflen": 32, "x": 1}]'],
    ],
)
def test_bad_settings_are_refused(flags):
    with pytest.raises(ValidationError):
        serve_settings(*flags)


def test_secrets_never_show_in_repr_or_errors():
    key = "partner:0123456789abcdef-secret"
    settings = Settings(api_keys=key, redis_url="redis://:hunter2-password@db:6379/0")
    assert "0123456789abcdef-secret" not in repr(settings)
    assert "hunter2-password" not in repr(settings)
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys="partner:short-secret")
    assert "short-secret" not in str(caught.value)


def test_a_bad_rule_names_its_line():
    with pytest.raises(ValidationError, match=r"rule 2 \('scrypt : ip : 1 : 1s : 1s : nap'\)"):
        serve_settings("--rules", "scrypt : ip : 1 : 1s : 1s : block; scrypt : ip : 1 : 1s : 1s : nap")


def test_rules_from_a_file(tmp_path):
    path = tmp_path / "rules.txt"
    path.write_text("# ours\nscrypt : ip : 5 : 1m : 10m : ban\n")
    rules = serve_settings("--rules-file", str(path)).rule_set
    assert [(r.attempts, r.window, r.duration, r.policy) for r in rules] == [(5, 60, 600, "ban")]
    with pytest.raises(ValidationError, match="not both"):
        serve_settings("--rules-file", str(path), "--rules", "")


def test_default_rules_apply_when_none_are_given():
    assert len(Settings().rule_set) == 6
    assert Settings(rules="").rule_set == ()
