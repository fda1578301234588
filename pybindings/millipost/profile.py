"""Load profiles: the TOML file that sets the behaviour mix of ``millipost load`` (docs/load.md).

A profile file is merged over the bundled default (``millipost/profiles/default.toml``): every
key is optional, and what a file leaves out keeps its default. Validation is strict, because a
misspelt key that is silently ignored makes a run measure something other than what its author
meant: unknown keys are named with their full path, wrong types and out-of-range values say
which range applies.
"""
from __future__ import annotations

import copy
import math
import os
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from typing import Any, Mapping

#: The profile file format version this module reads.
VERSION = 1

#: Behaviour kinds the engine implements, and the actions each one's [commands] table may weigh.
KINDS: dict[str, tuple[str, ...]] = {
    "webmail": ("list", "select", "fetch_headers", "read", "flag", "move", "delete", "search"),
    "mobile": ("idle", "fetch_new", "flag", "delete"),
    "pop3": ("retrieve", "top"),
    "sender": (),
    "mx": (),
}

#: Which protocol (target URL scheme) each kind needs.
KIND_PROTOCOL = {"webmail": "imap", "mobile": "imap", "pop3": "pop3", "sender": "smtp",
                 "mx": "smtp"}

_INF = math.inf

# (type, minimum, maximum) per key. Floats accept integers; bools are not numbers here.
_LOAD_KEYS = {
    "rate_per_user_per_hour": (float, 0.0, 3600.0 * 100),
    "closed_restart_s": (float, 0.0, 3600.0),
    "session_timeout_s": (float, 0.001, 86400.0),
    "reply_timeout_s": (float, 0.001, 3600.0),
}
_MESSAGE_KEYS = {
    "size_median_bytes": (int, 100, 100_000_000),
    "tail_fraction": (float, 0.0, 1.0),
    "tail_alpha": (float, 0.5, 10.0),
    "size_max_bytes": (int, 200, 1_000_000_000),
    "multipart_fraction": (float, 0.0, 1.0),
    "attachment_fraction": (float, 0.0, 1.0),
    "non_ascii_fraction": (float, 0.0, 1.0),
    "reply_fraction": (float, 0.0, 1.0),
}
_MAILBOX_KEYS = {
    "prepopulate_messages": (int, 0, 1_000_000),
}
# Keys every behaviour profile has.
_COMMON_KEYS = {
    "weight": (float, 0.0, 1e9),
    "think_time_s": (float, 0.0, 86400.0),
    "think_time_max_s": (float, 0.0, 86400.0),
    "actions_mean": (float, 0.0, 1e6),
}
# Keys particular to one kind.
_KIND_KEYS = {
    "webmail": {},
    "mobile": {"idle_hold_s": (float, 0.0, 86400.0), "idle_hold_max_s": (float, 0.0, 86400.0),
               "qresync": (bool, None, None)},
    "pop3": {"leave_on_server": (float, 0.0, 1.0)},
    "sender": {"recipients_mean": (float, 1.0, 1000.0), "recipients_max": (int, 1, 1000),
               "pipelining": (bool, None, None)},
    "mx": {"recipients_mean": (float, 1.0, 1000.0), "recipients_max": (int, 1, 1000),
           "pipelining": (bool, None, None)},
}
_COMMAND_WEIGHT = (float, 0.0, 1e9)


class ProfileError(ValueError):
    """A profile file or dict that cannot be used; the message names the file and the key."""


def default_path() -> str:
    """The bundled default profile (installed in the package, else the source tree's)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles", "default.toml")


def _read_toml(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profile: {e.strerror or e}") from None


def default() -> dict:
    """The default profile as a validated dict (a fresh copy)."""
    return _validate(_read_toml(default_path()), default_path())


def _merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load(source: str | os.PathLike | Mapping | None = None) -> dict:
    """The effective profile: ``source`` (a TOML file path or a dict of the same shape) merged
    over the default, validated. ``None`` gives the default. Raises :class:`ProfileError`."""
    base = _read_toml(default_path())
    if source is None:
        return _validate(base, default_path())
    if isinstance(source, Mapping):
        where, given = "profile", dict(source)
    else:
        where = os.fspath(source)
        given = _read_toml(where)
    # The user's own keys are checked before merging, so that errors name what they wrote.
    _check_shape(given, where)
    return _validate(_merge(base, given), where)


def _type_name(t) -> str:
    return {float: "a number", int: "an integer", bool: "true or false"}[t]


def _value(where: str, key: str, value: Any, spec) -> Any:
    t, lo, hi = spec
    if t is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"{where}: {key} must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            t is int and not isinstance(value, int)):
        raise ProfileError(f"{where}: {key} must be {_type_name(t)}, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProfileError(f"{where}: {key} must be finite, not {value!r}")
    if not lo <= value <= hi:
        raise ProfileError(f"{where}: {key} = {value!r} is out of range [{lo:g}, {hi:g}]")
    return float(value) if t is float else int(value)


def _table(where: str, key: str, value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}: {key} must be a table ([{key}]), not {value!r}")
    return dict(value)


def _unknown(where: str, prefix: str, keys, allowed) -> None:
    bad = sorted(set(keys) - set(allowed))
    if bad:
        names = ", ".join(f"{prefix}{k}" for k in bad)
        raise ProfileError(f"{where}: unknown key{'s' if len(bad) > 1 else ''} {names} "
                           f"(allowed here: {', '.join(sorted(allowed))})")


def _check_shape(p: Mapping, where: str) -> None:
    """Checks a partial profile's keys and values (everything optional)."""
    _unknown(where, "", p, ("version", "load", "message", "mailbox", "profiles"))
    if "version" in p and p["version"] != VERSION:
        raise ProfileError(f"{where}: version = {p['version']!r} is not supported "
                           f"(this millipost reads version {VERSION})")
    for section, keys in (("load", _LOAD_KEYS), ("message", _MESSAGE_KEYS),
                          ("mailbox", _MAILBOX_KEYS)):
        if section in p:
            t = _table(where, section, p[section])
            _unknown(where, f"{section}.", t, keys)
            for k, v in t.items():
                _value(where, f"{section}.{k}", v, keys[k])
    if "profiles" in p:
        profiles = _table(where, "profiles", p["profiles"])
        for name, prof in profiles.items():
            _check_profile(where, name, _table(where, f"profiles.{name}", prof))


def _kind_of(where: str, name: str, prof: Mapping) -> str:
    kind = prof.get("kind", name if name in KINDS else None)
    if kind is None:
        raise ProfileError(f"{where}: profiles.{name} needs kind = one of "
                           f"{', '.join(KINDS)} (only the built-in names imply their kind)")
    if kind not in KINDS:
        raise ProfileError(f"{where}: profiles.{name}.kind = {kind!r} is not one of "
                           f"{', '.join(KINDS)}")
    return kind


def _check_profile(where: str, name: str, prof: Mapping) -> str:
    kind = _kind_of(where, name, prof)
    specs = {**_COMMON_KEYS, **_KIND_KEYS[kind]}
    allowed = set(specs) | {"kind"} | ({"commands"} if KINDS[kind] else set())
    _unknown(where, f"profiles.{name}.", prof, allowed)
    for k, v in prof.items():
        if k in specs:
            _value(where, f"profiles.{name}.{k}", v, specs[k])
    if "commands" in prof:
        cmds = _table(where, f"profiles.{name}.commands", prof["commands"])
        _unknown(where, f"profiles.{name}.commands.", cmds, KINDS[kind])
        for k, v in cmds.items():
            _value(where, f"profiles.{name}.commands.{k}", v, _COMMAND_WEIGHT)
    return kind


def _validate(p: dict, where: str) -> dict:
    """Checks a complete (merged) profile and returns it normalised: every profile has its
    ``kind``, every key of its kind, numbers as floats or ints as specified."""
    _check_shape(p, where)
    out: dict = {"version": VERSION}
    for section, keys in (("load", _LOAD_KEYS), ("message", _MESSAGE_KEYS),
                          ("mailbox", _MAILBOX_KEYS)):
        t = p.get(section, {})
        missing = sorted(set(keys) - set(t))
        if missing:
            raise ProfileError(f"{where}: {section}.{missing[0]} is missing")
        out[section] = {k: _value(where, f"{section}.{k}", t[k], keys[k]) for k in keys}
    if out["message"]["size_max_bytes"] < out["message"]["size_median_bytes"]:
        raise ProfileError(f"{where}: message.size_max_bytes must be at least "
                           f"message.size_median_bytes")
    profiles = {}
    for name, prof in p.get("profiles", {}).items():
        kind = _check_profile(where, name, prof)
        specs = {**_COMMON_KEYS, **_KIND_KEYS[kind]}
        # A new profile of a built-in kind starts from that kind's defaults.
        base = p["profiles"].get(kind, {}) if name != kind else {}
        full = _merge({k: v for k, v in base.items() if k != "kind"}, prof)
        missing = sorted(set(specs) - set(full))
        if missing:
            raise ProfileError(f"{where}: profiles.{name}.{missing[0]} is missing")
        q = {"kind": kind}
        q.update({k: _value(where, f"profiles.{name}.{k}", full[k], specs[k]) for k in specs})
        if q["think_time_max_s"] < q["think_time_s"]:
            raise ProfileError(f"{where}: profiles.{name}.think_time_max_s must be at least "
                               f"think_time_s")
        if kind == "mobile" and q["idle_hold_max_s"] < q["idle_hold_s"]:
            raise ProfileError(f"{where}: profiles.{name}.idle_hold_max_s must be at least "
                               f"idle_hold_s")
        if kind in ("sender", "mx") and q["recipients_max"] < q["recipients_mean"]:
            raise ProfileError(f"{where}: profiles.{name}.recipients_max must be at least "
                               f"recipients_mean")
        if KINDS[kind]:
            cmds = {a: 0.0 for a in KINDS[kind]}
            cmds.update({k: float(v) for k, v in full.get("commands", {}).items()})
            if q["weight"] > 0 and q["actions_mean"] > 0 and not any(cmds.values()):
                raise ProfileError(f"{where}: profiles.{name}.commands: every weight is 0, "
                                   f"so the profile has nothing to do")
            q["commands"] = cmds
        profiles[name] = q
    if not any(q["weight"] > 0 for q in profiles.values()):
        raise ProfileError(f"{where}: every profile has weight 0; at least one must be positive")
    out["profiles"] = profiles
    return out


def protocols(profile: Mapping) -> set[str]:
    """The protocols (imap, pop3, smtp) a profile's sessions of positive weight use."""
    return {KIND_PROTOCOL[q["kind"]] for q in profile["profiles"].values() if q["weight"] > 0}


def mix(profile: Mapping) -> dict[str, float]:
    """Each profile's share of sessions (weights normalised to sum to 1)."""
    total = sum(q["weight"] for q in profile["profiles"].values())
    return {name: q["weight"] / total for name, q in profile["profiles"].items()}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v!r} has no TOML form here")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    raise TypeError(f"cannot write {type(v).__name__} to a profile")


def _toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "_-" for c in k) else _toml_value(k)


def to_toml(profile: Mapping, _prefix: str = "") -> str:
    """A profile dict as TOML that :func:`load` reads back to the same profile (the results of a
    run carry their profile, so that the run can be repeated from its report)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in profile.items()
             if not isinstance(v, Mapping)]
    for k, v in profile.items():
        if isinstance(v, Mapping):
            name = f"{_prefix}{_toml_key(k)}"
            body = to_toml(v, name + ".")
            lines.append(f"\n[{name}]\n{body}" if any(not isinstance(x, Mapping)
                                                     for x in v.values()) else "\n" + body)
    text = "\n".join(lines).strip("\n")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text + "\n"
