"""Typed settings: ``$WGOPS_HOME/config.toml`` < environment < flags, validated once.

Every URL that is printed or logged goes through :func:`mask_url`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wgops.store.errors import ConfigError

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_ALLOW = "wgops.examples.tasks:*"
NAMESPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_KEY = 16                    # characters of a message_key
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def default_home(env: dict[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/wgops``, else ``~/.local/share/wgops``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "wgops"


SECRET_PARAMS = ("password", "passwd", "pass", "pwd", "secret", "token", "sslpassword",
                 "sslkey", "api_key", "apikey", "key")
_SECRET_QUERY = re.compile(r"([?&;](?:" + "|".join(SECRET_PARAMS) + r")=)[^&;#]*", re.I)
URL_CHARACTERS = "a special character in the password (/ ? # @ :) must be percent-encoded"


def mask_url(url: str) -> str:
    """``url`` with every secret shown as ``***``: its userinfo's password, whatever
    characters it holds (encoded or not: everything up to the last ``@``), and the values of
    query parameters that name a secret (``?password=``, ``sslpassword``, ``token`` ...).
    Text that is not a URL is not shown at all."""
    if not isinstance(url, str):
        return "<not a URL>"
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.replace("+", "").isalnum():
        return "<not a URL>"
    userinfo, at, host = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:***@{host}" if colon else f"{user}@{host}"
    return f"{scheme}://{_SECRET_QUERY.sub(lambda m: m.group(1) + '***', rest)}"


def check_url(setting: str, url: str, schemes: tuple[str, ...], example: str) -> None:
    """Refuse a URL that would be read wrongly (a password with an unencoded ``/``, ``#``,
    ``?``, ``@``; a port that is not a number), naming the setting, showing it masked."""
    if not url.startswith(tuple(f"{s}://" for s in schemes)):
        raise ConfigError(f"{setting} must be {example}, not {mask_url(url)!r}")
    if url.startswith("sqlite://"):
        return
    try:
        parts = urlsplit(url)
        parts.port                                          # noqa: B018 - raises when bad
    except ValueError:
        raise ConfigError(f"{setting} is not a valid URL ({URL_CHARACTERS}): "
                          f"{mask_url(url)}") from None
    if parts.fragment or parts.netloc.count("@") > 1 or "@" in url.split("://", 1)[1] \
            and "@" not in parts.netloc or not parts.hostname:
        raise ConfigError(f"{setting} is not a valid URL ({URL_CHARACTERS}): "
                          f"{mask_url(url)}")


AGE_FORMS = "90s, 15m, 12h or 30d"
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: Any, name: str = "AGE") -> float:
    """Seconds in an AGE: a number and a unit, ``90s``, ``15m``, ``12h``, ``30d``."""
    match = _AGE_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"{name} must be an age such as {AGE_FORMS}, not {text!r}")
    seconds = float(match.group(1)) * _AGE_UNITS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{name} must be an age longer than 0 such as {AGE_FORMS}, not "
                          f"{text!r}")
    return seconds


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{name} must be on or off, not {value!r}")


def _float(name: str, value: Any, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def _int(name: str, value: Any, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an integer, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {number}")
    return number


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        items = str(value).split(",")
    return tuple(item.strip() for item in items if item.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting of an installation. Build it with :meth:`load`."""

    home: Path
    broker_url: str = DEFAULT_BROKER_URL
    db_url: str = ""
    namespace: str = "wgops"
    allow: tuple[str, ...] = (DEFAULT_ALLOW,)
    task_path: tuple[str, ...] = ()
    shell: bool = False
    heartbeat: float = 1.0            # seconds between daemon heartbeats
    stale_after: float = 3.0          # a heartbeat older than this means the daemon is dead
    max_lost: int = 3                 # a task that loses its worker this often is quarantined
    max_result_bytes: int = 1_000_000
    max_message_bytes: int = 4_000_000
    max_document_bytes: int = 10_000_000   # a graph document, its nested graphs' files included
    max_dead_letters: int = 10_000  # dead letters kept (queue and table); older ones dropped
    max_map: int = 10_000           # copies one mapped task may have
    max_depth: int = 100            # levels of graphs nested at run time (built graphs)
    max_log_bytes: int = 1_000_000  # an attempt's captured output kept (the tail); 0: none
    # HMAC keys of signed messages (the first signs, any verifies); never shown
    message_key: tuple[str, ...] = field(default=(), repr=False)
    consumer_timeout: float = 1800.0  # the broker's consumer_timeout, seconds
    grace: float = 30.0               # seconds a stopping worker lets running tasks finish
    # schedulers delete terminal graphs that ended longer ago (seconds; None: keep them)
    retention: float | None = None

    def __post_init__(self) -> None:
        if not NAMESPACE_RE.match(self.namespace):
            raise ConfigError(
                f"WGOPS_NAMESPACE {self.namespace!r} must be letters, digits, '_', '.' or '-'")
        check_url("WGOPS_BROKER_URL", self.broker_url, ("amqp", "amqps"),
                  "amqp://USER:PASSWORD@HOST:PORT/VHOST (or amqps://)")
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.home / 'wgops.db'}")
        check_url("WGOPS_DB_URL", self.db_url, ("sqlite", "postgresql", "postgres"),
                  "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        if any(len(key) < MIN_KEY for key in self.message_key):
            raise ConfigError(f"WGOPS_MESSAGE_KEY: each key must have at least {MIN_KEY} "
                              "characters")
        if self.stale_after <= self.heartbeat:
            raise ConfigError("stale_after must be longer than heartbeat")

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            shown.append(f"{f.name}={mask_url(value) if f.name.endswith('_url') else value!r}")
        return f"Settings({', '.join(shown)})"

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def masked(self) -> dict[str, str]:
        return {"broker": mask_url(self.broker_url), "database": mask_url(self.db_url)}

    @classmethod
    def load(cls, env: dict[str, str] | None = None, **flags: Any) -> "Settings":
        """Read ``config.toml``, then the environment, then ``flags`` (None = not given)."""
        env = dict(os.environ if env is None else env)
        home = Path(flags.get("home") or env.get("WGOPS_HOME") or default_home(env)).expanduser()
        values: dict[str, Any] = {}
        config_file = home / "config.toml"
        if config_file.exists():
            try:
                values.update(tomllib.loads(config_file.read_text()))
            except (tomllib.TOMLDecodeError, OSError) as exc:
                raise ConfigError(f"{config_file}: {exc}") from None
        for name in _FIELDS:
            key = f"WGOPS_{name.upper()}"
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in flags.items() if v is not None and k != "home"})
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{config_file}: unknown setting {unknown[0]!r}")
        return cls(home=home, **_coerce(values))


_FIELDS = [f.name for f in dataclasses.fields(Settings) if f.name != "home"]


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name == "message_key":
            out[name] = _list(value)
        elif name in ("allow", "task_path"):
            out[name] = _list(value) if name == "allow" else tuple(
                p for p in (value if isinstance(value, list) else str(value).split(os.pathsep))
                if p)
        elif name == "shell":
            out[name] = _bool("WGOPS_SHELL", value)
        elif name in ("max_lost", "max_result_bytes", "max_message_bytes", "max_document_bytes",
                      "max_dead_letters", "max_map", "max_depth"):
            out[name] = _int(name, value, minimum=1)
        elif name == "max_log_bytes":
            out[name] = _int(name, value, minimum=0)
        elif name == "retention":
            off = value is None or str(value).strip().lower() in FALSE | {"none"}
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[name] = _float("retention", value, minimum=0.05)   # seconds, from code
            else:
                out[name] = None if off else parse_age(value, "retention")
        elif name in ("heartbeat", "stale_after", "consumer_timeout", "grace"):
            out[name] = _float(name, value, minimum=0.05)
        else:
            out[name] = str(value)
    return out


def default_config_text(settings: Settings) -> str:
    """The commented ``config.toml`` that ``wgops init`` writes."""
    return (
        "# wgops configuration; the environment (WGOPS_*) and flags override it.\n"
        f'# broker_url = "{DEFAULT_BROKER_URL}"\n'
        f'# db_url = "sqlite:///{settings.home / "wgops.db"}"\n'
        '# namespace = "wgops"\n'
        f'# allow = ["{DEFAULT_ALLOW}"]\n'
        "# task_path = []\n"
        "# shell = false\n"
        "# message_key = []   # HMAC keys: sign every message (the same on every host)\n"
        '# retention = "30d"  # delete finished, failed and killed graphs this old (off)\n'
    )


__all__ = ["Settings", "mask_url", "parse_age", "AGE_FORMS", "default_config_text",
           "default_home", "field"]
