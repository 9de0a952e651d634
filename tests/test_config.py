"""Settings: config.toml < environment < flags, validated once; passwords masked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from wgops.store.config import (
    DEFAULT_ALLOW,
    DEFAULT_BROKER_URL,
    Settings,
    default_config_text,
    mask_url,
)
from wgops.store.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def load(home: Path, toml: str | None = None, env: dict[str, str] | None = None,
         **flags: Any) -> Settings:
    if toml is not None:
        (home / "config.toml").write_text(toml)
    return Settings.load(env={"WGOPS_HOME": str(home), **(env or {})}, **flags)


def config_error(home: Path, toml: str | None = None, env: dict[str, str] | None = None,
                 **flags: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(home, toml, env, **flags)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_defaults_give_a_working_single_machine(home: Path) -> None:
    s = load(home)
    assert s.home == home
    assert s.broker_url == DEFAULT_BROKER_URL
    assert s.db_url == f"sqlite:///{home / 'wgops.db'}"
    assert s.namespace == "wgops"
    assert s.allow == (DEFAULT_ALLOW,) and s.task_path == () and s.shell is False
    assert s.config_file == home / "config.toml" and s.logs_dir == home / "logs"


def test_home_from_flag_beats_environment(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other"
    assert Settings.load(env={"WGOPS_HOME": str(home)}, home=str(other)).home == other


def test_default_home_without_environment(tmp_path: Path) -> None:
    s = Settings.load(env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert s.home == tmp_path / "xdg" / "wgops"


def test_config_file_is_read(home: Path) -> None:
    s = load(home, 'namespace = "fromfile"\nallow = ["a.b:*", "c:d"]\nshell = true\n'
                   'heartbeat = 0.2\nstale_after = 1.0\n')
    assert s.namespace == "fromfile" and s.allow == ("a.b:*", "c:d") and s.shell is True
    assert s.heartbeat == 0.2 and s.stale_after == 1.0


def test_environment_beats_config_file(home: Path) -> None:
    s = load(home, 'namespace = "fromfile"\nshell = true\nallow = ["x:*"]\n',
             {"WGOPS_NAMESPACE": "fromenv", "WGOPS_SHELL": "off",
              "WGOPS_ALLOW": "a:*, b.c:f ,", "WGOPS_TASK_PATH": os.pathsep.join(["/x", "/y"])})
    assert s.namespace == "fromenv" and s.shell is False
    assert s.allow == ("a:*", "b.c:f") and s.task_path == ("/x", "/y")


def test_flags_beat_environment_and_none_means_not_given(home: Path) -> None:
    s = load(home, 'namespace = "fromfile"\n', {"WGOPS_NAMESPACE": "fromenv"},
             namespace="fromflag", broker_url=None)
    assert s.namespace == "fromflag" and s.broker_url == DEFAULT_BROKER_URL


def test_all_three_layers_combine(home: Path) -> None:
    s = load(home, 'namespace = "f"\nbroker_url = "amqp://u:p@file:5672/"\nshell = true\n',
             {"WGOPS_BROKER_URL": "amqp://u:p@env:5672/"}, namespace="flag")
    assert (s.namespace, s.broker_url, s.shell) == ("flag", "amqp://u:p@env:5672/", True)


def test_postgresql_url_accepted(home: Path) -> None:
    url = "postgresql://u:pw@127.0.0.1:5432/wgops"
    assert load(home, env={"WGOPS_DB_URL": url}).db_url == url


@pytest.mark.parametrize("value,expected", [("1", True), ("on", True), ("YES", True),
                                            ("true", True), ("0", False), ("off", False),
                                            ("", False), ("No", False)])
def test_shell_switch_values(home: Path, value: str, expected: bool) -> None:
    assert load(home, env={"WGOPS_SHELL": value}).shell is expected


@pytest.mark.parametrize("env,says", [
    ({"WGOPS_SHELL": "maybe"}, "WGOPS_SHELL must be on or off, not 'maybe'"),
    ({"WGOPS_NAMESPACE": "has space"}, "WGOPS_NAMESPACE 'has space'"),
    ({"WGOPS_NAMESPACE": ""}, "WGOPS_NAMESPACE ''"),
    ({"WGOPS_BROKER_URL": "http://127.0.0.1/"}, "WGOPS_BROKER_URL must be amqp://"),
    ({"WGOPS_DB_URL": "postgresql://u:pa/ss@h/db"},
     "WGOPS_DB_URL is not a valid URL (a special character in the password"),
    ({"WGOPS_DB_URL": "postgresql://u:pa#ss@h/db"}, "WGOPS_DB_URL is not a valid URL"),
    ({"WGOPS_DB_URL": "postgresql://u:pa?ss@h/db"}, "WGOPS_DB_URL is not a valid URL"),
    ({"WGOPS_DB_URL": "postgresql://u:pa@ss@h/db"}, "WGOPS_DB_URL is not a valid URL"),
    ({"WGOPS_BROKER_URL": "amqp://u:p@h:port/"}, "WGOPS_BROKER_URL is not a valid URL"),
    ({"WGOPS_DB_URL": "mysql://h/db"}, "WGOPS_DB_URL must be sqlite:///PATH or postgresql://"),
    ({"WGOPS_HEARTBEAT": "soon"}, "heartbeat must be a number, not 'soon'"),
    ({"WGOPS_HEARTBEAT": "0"}, "heartbeat must be at least 0.05"),
    ({"WGOPS_MAX_LOST": "two"}, "max_lost must be an integer, not 'two'"),
    ({"WGOPS_MAX_LOST": "0"}, "max_lost must be at least 1"),
    ({"WGOPS_HEARTBEAT": "5", "WGOPS_STALE_AFTER": "4"}, "stale_after must be longer"),
])
def test_invalid_environment_values(home: Path, env: dict[str, str], says: str) -> None:
    assert says in config_error(home, env=env)


def test_invalid_flag_value(home: Path) -> None:
    assert "WGOPS_NAMESPACE" in config_error(home, namespace="a/b")


def test_unknown_setting_in_config_file(home: Path) -> None:
    message = config_error(home, 'namespace = "x"\nbrokr_url = "amqp://h/"\n')
    assert "config.toml" in message and "unknown setting 'brokr_url'" in message


def test_unparsable_config_file(home: Path) -> None:
    message = config_error(home, 'namespace = "unclosed\n')
    assert str(home / "config.toml") in message


def test_invalid_value_in_config_file(home: Path) -> None:
    assert "WGOPS_SHELL must be on or off" in config_error(home, "shell = 3\n")


def test_unrelated_environment_is_ignored(home: Path) -> None:
    assert load(home, env={"WGOPS_SOMETHING_ELSE": "x", "PATH": "/bin"}).namespace == "wgops"


def test_invalid_urls_are_masked_in_errors(home: Path) -> None:
    errors = [config_error(home, env={"WGOPS_BROKER_URL": "http://u:hun2ter@h/"}),
              config_error(home, env={"WGOPS_DB_URL": "mysql://u:hun2ter@h/db"})]
    for password in ("hun/2ter", "hun#2ter", "hun?2ter", "hun@2ter"):   # unencoded: refused
        errors.append(config_error(home, env={"WGOPS_DB_URL": f"postgresql://u:{password}@h/db"}))
        errors.append(config_error(home, env={"WGOPS_BROKER_URL": f"amqp://u:{password}@h/"}))
    for error in errors:
        assert "***" in error and "hun" not in error and "2ter" not in error, error


def test_default_config_text_round_trips(home: Path) -> None:
    s = load(home)
    (home / "config.toml").write_text(default_config_text(s))
    assert load(home) == s


def test_masked_settings(home: Path) -> None:
    s = load(home, env={"WGOPS_DB_URL": "postgresql://pg:topsecret@db:5432/w"})
    assert s.masked() == {"broker": "amqp://guest:***@127.0.0.1:5672/",
                          "database": "postgresql://pg:***@db:5432/w"}


@pytest.mark.parametrize("url,masked", [
    ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
    ("amqps://user:s3cr%40t@broker.example:5671/vhost",
     "amqps://user:***@broker.example:5671/vhost"),
    ("postgresql://postgres:pw@127.0.0.1:5432/test", "postgresql://postgres:***@127.0.0.1:5432/test"),
    ("postgres://u:p@[::1]:5432/db?sslmode=require", "postgres://u:***@[::1]:5432/db?sslmode=require"),
    ("amqp://u:p@ss@host/", "amqp://u:***@host/"),
    ("amqp://:pw@host/", "amqp://:***@host/"),
    ("amqp://u:p@h:99999/", "amqp://u:***@h:99999/"),
    ("postgresql://u:pa/ss#w?rd@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://h/db?password=hunter2&sslmode=require",
     "postgresql://h/db?password=***&sslmode=require"),
    ("postgresql://u@h/db?sslpassword=a;token=b", "postgresql://u@h/db?sslpassword=***;token=***"),
    ("hunter2", "<not a URL>"),
])
def test_mask_url_masks_passwords(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize("url", [
    "amqp://127.0.0.1:5672/", "amqp://guest@127.0.0.1/", "postgresql://postgres@127.0.0.1:5432/test",
    "sqlite:////tmp/wgops.db", "sqlite:///relative.db",
])
def test_mask_url_leaves_passwordless_urls_alone(url: str) -> None:
    assert mask_url(url) == url


def test_retention_is_an_age_off_by_default(home: Path) -> None:
    assert load(home).retention is None
    assert load(home, 'retention = "30d"\n').retention == 30 * 86400
    assert load(home, env={"WGOPS_RETENTION": "12h"}).retention == 12 * 3600
    assert load(home, 'retention = "30d"\n', env={"WGOPS_RETENTION": "90s"}).retention == 90
    assert load(home, env={"WGOPS_RETENTION": "15m"}).retention == 900
    assert load(home, env={"WGOPS_RETENTION": "off"}).retention is None
    assert load(home, retention=5).retention == 5.0          # seconds, from code
    for bad in ("30", "3x", "d", "-1d", "0s", "1 week"):
        message = config_error(home, env={"WGOPS_RETENTION": bad})
        assert "retention" in message and "90s, 15m, 12h or 30d" in message
