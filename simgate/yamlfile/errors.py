"""Turn pydantic validation errors into ``file:line: key: what was expected`` lines."""

from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ValidationError

from simgate.errors import SimgateError, located
from simgate.names import did_you_mean
from simgate.yamlfile.lines import dotted, line_of


def describe(exc: ValidationError, model: type[BaseModel], source: str, lines: dict, prefix: tuple = (),
             what: str = "") -> list[str]:
    """One message per error; ``prefix`` locates a nested document (e.g. a perturbation's params)."""
    messages = []
    for err in exc.errors(include_url=False):
        loc = _without_type_names(tuple(err["loc"]), prefix, lines)
        path = prefix + loc
        line = line_of(lines, path)
        if err["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            hint = did_you_mean(str(loc[-1]), valid) if valid else ""
            text = f"{dotted(path)}: unknown key {loc[-1]!r}{what}{hint}"
        elif err["type"] == "missing":
            text = f"{dotted(path)}: required key {loc[-1]!r} is missing{what}"
        elif err.get("input") is None and err["type"] != "missing":
            text = f"{dotted(path)}: the value is empty; expected {_expected(err)}"
        elif err["type"] == "value_error":  # a validator's own sentence, which carries the fix
            text = f"{dotted(path)}: {_expected(err)}"
        else:
            text = f"{dotted(path)}: expected {_expected(err)}, got {err['input']!r}"
            if isinstance(err["input"], str) and err["type"] in _NUMBER_TYPES:
                text += " (a quoted value is text: write the number or true/false without quotes)"
            elif err["type"] == "string_type" and isinstance(err["input"], (int, float, bool)):
                text += " (YAML read it as a number or a boolean: put it in quotes)"
        messages.append(located(source, line, text))
    return messages


def validated(model: type[BaseModel], data, source: str, lines: dict, hint: str, prefix: tuple = ()):
    """``data`` (a parsed YAML mapping) as ``model``, or SimgateError with one located message per
    problem; ``hint`` says what the mapping holds, for data that is no mapping at all."""

    if not isinstance(data, dict):
        raise SimgateError(located(source, line_of(lines, prefix) or 1, hint))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SimgateError("\n".join(describe(exc, model, source, lines, prefix=prefix))) from None


def _without_type_names(loc: tuple, prefix: tuple, lines: dict) -> tuple:
    """Pydantic names the member of a union that failed (``sliding.float``,
    ``sliding.tuple[float, float]``); the file has no such key, so the place is the key itself."""
    out: tuple = ()
    for part in loc:
        if isinstance(part, str) and prefix + out + (part,) not in lines and _looks_like_a_type(part):
            continue
        out += (part,)
    return out


def _looks_like_a_type(part: str) -> bool:
    return part in {"float", "int", "str", "bool", "list", "dict", "tuple", "none"} or "[" in part or (
        part.startswith(("function-", "lax-", "json-", "constrained-")))


_NUMBER_TYPES = {"int_type", "float_type", "bool_type", "int_parsing", "float_parsing", "bool_parsing"}


def _expected(err) -> str:
    msg = err["msg"]
    for lead in ("Input should be ", "Value error, "):
        if msg.startswith(lead):
            return msg[len(lead):]
    return msg[0].lower() + msg[1:]


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys of the mapping at ``loc`` inside ``model`` (empty if it is a free dict)."""
    current: object = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation):
    """``X | None`` → ``X`` (the first model-like member of a union)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                return member
        return members[0] if members else annotation
    return annotation
