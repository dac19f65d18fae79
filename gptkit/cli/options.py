"""Click options made from the training configs' fields (gptkit.train_config): the flag's type comes
from the annotation, its help from the field's, its shown default from the field's default, so each
is written once. Every option defaults to None (not given), so the config file's, the resumed run's
or the dataclass's value stands (TrainConfig.resolve)."""

from __future__ import annotations

import dataclasses
import types
from typing import Literal, Union, get_args, get_origin, get_type_hints

import click

from gptkit.train_config import flag_name, required


def config_options(cls: type, *names: str):
    """A decorator adding the flags of ``cls``'s fields ``names``, in that order."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    options = [_option(cls, fields[name], hints[name]) for name in names]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _option(cls: type, f: dataclasses.Field, hint) -> click.Option:
    flag, kind = flag_name(f), _without_none(hint)
    settings = dict(default=None, help=_help(cls, f.name) + _extra(f, flag))
    if kind is bool:
        switch = flag if "flag" in f.metadata else f"{flag}/--no-{flag[2:]}"
        return click.option(switch, f.name, is_flag=True, **settings)
    if get_origin(kind) is Literal:
        return click.option(flag, f.name, type=click.Choice(get_args(kind)), **settings)
    if list[str] in _members(hint):  # several directories read as one: a list only when repeated
        return click.option(flag, f.name, multiple=True, callback=_one_or_many, **settings)
    return click.option(flag, f.name, type=kind, **settings)


def _help(cls: type, name: str) -> str:
    """The field's help, or that of the base it overrides (a subclass that only changes a default)."""
    for base in cls.__mro__:
        f = getattr(base, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata.get("help"):
            return f.metadata["help"]
    raise TypeError(f"{cls.__name__}.{name} has no help text: give it one with knob()")


def _extra(f: dataclasses.Field, flag: str) -> str:
    """The default as --help shows it (click would show the None that stands for "not given"); none
    for a lone switch or a default of None, whose help says what decides."""
    if required(f):
        return "  [required]"
    if f.default is None or f.default_factory is not dataclasses.MISSING or (f.default is False and "flag" in f.metadata):
        return ""
    if isinstance(f.default, bool):
        return f"  [default: {flag if f.default else '--no-' + flag[2:]}]"
    return f"  [default: {f.default}]"


def _members(hint) -> tuple:
    return get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)


def _without_none(hint):
    """``X | None`` -> X; a union of more stays as it is."""
    members = [m for m in _members(hint) if m is not type(None)]
    return members[0] if len(members) == 1 else hint


def _one_or_many(_ctx, _param, values: tuple[str, ...]) -> str | list[str] | None:
    return (list(values) if len(values) > 1 else values[0]) if values else None
