from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccplatform.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_int,
    env_list,
    env_required,
    parse_switch_nodes,
)

ROOT = Path(__file__).resolve().parents[2]


def _load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "EMAIL_URL",
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "ALLOWED_HOSTS",
            "CCP_ENV",
        }
    }
    return subprocess.run(
        [sys.executable, "-c", "import ccplatform.settings"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


PRODUCTION_OK = {
    "CCP_ENV": "production",
    "SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgres://u@127.0.0.1:1/db",
    "ALLOWED_HOSTS": "console.example.com",
    "EMAIL_URL": "smtp://127.0.0.1:25",
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
}


def test_production_settings_load_when_everything_is_set():
    result = _load_settings(PRODUCTION_OK)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "missing",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "ALLOWED_HOSTS",
        "EMAIL_URL",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
    ],
)
def test_production_refuses_to_start_without_a_secret_and_names_it(missing):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in PRODUCTION_OK.items() if k != missing}
    result = _load_settings(env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfiguredEnv" in last_line and missing in last_line


def test_unknown_mode_is_refused():
    result = _load_settings({"CCP_ENV": "prod", "DATABASE_URL": "postgres://u@127.0.0.1:1/db"})
    assert result.returncode != 0 and "CCP_ENV" in result.stderr


def test_typed_helpers_name_the_variable():
    assert env_bool("X", False, environ={"X": "yes"}) is True
    assert env_bool("X", True, environ={}) is True
    with pytest.raises(ImproperlyConfiguredEnv, match="X must be a boolean"):
        env_bool("X", False, environ={"X": "maybe"})
    assert env_int("N", 3, environ={"N": "7"}) == 7
    with pytest.raises(ImproperlyConfiguredEnv, match="N must be an integer"):
        env_int("N", 3, environ={"N": "seven"})
    assert env_list("L", ["a"], environ={"L": " x, ,y "}) == ["x", "y"]
    with pytest.raises(ImproperlyConfiguredEnv, match="TOKEN must be set"):
        env_required("TOKEN", why="testing", environ={"TOKEN": ""})


def test_switch_node_list_is_parsed_and_bad_items_are_named():
    assert parse_switch_nodes("fs1=10.0.0.5:8021, fs2=[::1]:8021") == [
        {"name": "fs1", "host": "10.0.0.5", "port": 8021},
        {"name": "fs2", "host": "[::1]", "port": 8021},
    ]
    with pytest.raises(ImproperlyConfiguredEnv, match="'fs1=10.0.0.5'"):
        parse_switch_nodes("fs1=10.0.0.5")


def test_channel_layer_follows_redis_url():
    code = "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    base = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    base["DJANGO_SETTINGS_MODULE"] = "ccplatform.settings"
    base.setdefault("DATABASE_URL", "postgres://u@127.0.0.1:1/db")
    with_redis = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=ROOT,
        env={**base, "REDIS_URL": "redis://127.0.0.1:6379/0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert with_redis.stdout.strip() == "channels_redis.core.RedisChannelLayer"
    without = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert without.stdout.strip() == "channels_postgres.core.PostgresChannelLayer"
