"""YAML with a line number for every key and list item, so errors can point at the file.

Scenario and manifest files are plain data: before anything is built from a file, its event
stream is checked (no tags beyond the standard scalar/collection ones, no alias that refers to
itself, a bounded size and depth once aliases are expanded), so a hostile file is rejected in
time linear in its length, with the line of the offending alias or tag.

A text is scanned once: the checked events are composed into nodes (the line of every key) and
the nodes constructed into data, without parsing the text again. And a text is parsed once per
process: :func:`load` keeps what it parsed by the text's sha256 (a contract file two policies
name, the scenarios a second ``load_cases`` reads), and every caller gets its own deep copy, so
nothing a caller changes reaches another.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import OrderedDict
from pathlib import Path

import yaml

from simgate.errors import SimgateError, located

Path_ = tuple  # ("perturbations", 0, "params", "sliding")
#: libyaml's loader where PyYAML was built with it: every xdist worker parses every scenario
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: nodes a document may hold with every alias expanded (the line map and the schema check
#: both see the expanded tree, so an alias bomb would otherwise grow memory by its fan-out per level)
MAX_NODES = 100_000
MAX_DEPTH = 100
MAX_BYTES = 4_000_000  # a scenario or manifest is a few kB; more is a wrong file, not a big scenario
_CORE = "tag:yaml.org,2002:"
#: explicit tags a plain-data file may carry ("!" is YAML's "just a string")
_ALLOWED_TAGS = {"!"} | {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}


def read(path: Path, display: str, what: str = "scenario") -> tuple[object, dict[Path_, int]]:
    """Read and parse a YAML file; every way it can be unreadable is one located message."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SimgateError(f"{display}: is {path.stat().st_size:,} bytes; {what} files are small YAML text "
                               f"(at most {MAX_BYTES:,} bytes): is it the right file?")
        raw = path.read_bytes()
    except IsADirectoryError:
        raise SimgateError(f"{display}: is a directory, not a {what} file; rename or remove it") from None
    except OSError as exc:
        raise SimgateError(f"{display}: cannot be read ({exc.strerror or exc}); "
                           f"check that it exists and is readable") from None
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\0"), raw.index(b"\0") + 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SimgateError(f"{display}: is not a UTF-8 text file (binary?); {what} files are YAML text") from None
    return load(text, display)


#: what :func:`load` parsed, by the sha256 of the text: (data, lines, the text's length), least
#: recently used first; bounded in entries and in the text they came from (a file is < MAX_BYTES)
_PARSED: OrderedDict[bytes, tuple[object, dict, int]] = OrderedDict()
_PARSED_MOST = 512
_PARSED_CHARS = 16_000_000


def load(text: str, source: str) -> tuple[object, dict[Path_, int]]:
    """Parse ``text`` safely; return the data and ``{path: line}`` (1-based). A text already
    parsed in this process is not parsed again; the caller gets its own copy either way. A text
    that fails is not kept: ``source`` is part of its message."""
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    hit = _PARSED.get(key)
    if hit is None:
        data, lines = _parse(text, source)
        hit = _PARSED[key] = (data, lines, len(text))
        while len(_PARSED) > _PARSED_MOST or (len(_PARSED) > 1 and sum(e[2] for e in _PARSED.values()) > _PARSED_CHARS):
            _PARSED.popitem(last=False)
    else:
        _PARSED.move_to_end(key)
    return copy.deepcopy(hit[0]), dict(hit[1])


def _parse(text: str, source: str) -> tuple[object, dict[Path_, int]]:
    """One scan of ``text``: its events checked (:func:`_check_events`), composed into nodes
    for the line map and constructed into data, all from that one event stream."""
    try:
        loader = _Events(_check_events(text, source))
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise SimgateError(_yaml_message(exc, source)) from None
    if node is None:
        return None, {}
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    _walk(node, (), lines, source)
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SimgateError(_yaml_message(exc, source)) from None
    problems = list(_non_finite(data, (), lines, source))
    if problems:
        raise SimgateError("\n".join(dict.fromkeys(problems)))
    return data, lines


class _Events(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """PyYAML's safe loading (its composer, safe constructor and resolver, as ``yaml.SafeLoader``)
    on a list of events already parsed, instead of parsing the text again."""

    def __init__(self, events: list):
        self._events, self._next = events, 0
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def check_event(self, *choices) -> bool:
        if self._next >= len(self._events):
            return False
        return not choices or isinstance(self._events[self._next], choices)

    def peek_event(self):
        return self._events[self._next] if self._next < len(self._events) else None

    def get_event(self):
        event = self.peek_event()
        self._next += 1
        return event


def _yaml_message(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return located(source, line, f"not valid YAML: {context + ', ' if context else ''}{problem}")


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


def _check_events(text: str, source: str) -> list:
    """Tags, recursive aliases, expanded size and depth, from the event stream alone (nothing is
    built, so a bomb costs the time of reading its text). Returns the events, checked."""
    done: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, depth) of a finished node
    stack: list[list] = []  # open collections: [anchor, depth below, expanded nodes before it]
    total = 0
    events: list = []
    for event in yaml.parse(text, Loader=_LOADER):
        events.append(event)
        line = event.start_mark.line + 1
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _ALLOWED_TAGS:
            raise SimgateError(located(source, line, f"tag {_tag_name(tag)!r} is not allowed; "
                                                     "scenario and manifest files are plain YAML: remove the tag"))
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in done:
                if any(frame[0] == event.anchor for frame in stack):
                    raise SimgateError(located(source, line, f"alias *{event.anchor} refers to a node that contains "
                                                             "it (a recursive alias); write the data out instead"))
                raise SimgateError(located(source, line, f"alias *{event.anchor} has no anchor &{event.anchor} before it"))
            nodes, depth = done[event.anchor]
            total += nodes
            if stack:
                stack[-1][1] = max(stack[-1][1], depth)
            where = f"alias *{event.anchor}"
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                done[event.anchor] = (1, 1)
            if stack:
                stack[-1][1] = max(stack[-1][1], 1)
            where = "here"
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            total += 1
            stack.append([event.anchor, 0, total - 1])
            where = "here"
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, below, opened = stack.pop()
            if anchor is not None:
                done[anchor] = (total - opened, below + 1)
            if stack:
                stack[-1][1] = max(stack[-1][1], below + 1)
            continue
        else:
            continue
        if total > MAX_NODES:
            raise SimgateError(located(source, line, f"the document expands to more than {MAX_NODES:,} values "
                                                     f"({where}: aliases are copied where they are used); "
                                                     "a scenario or manifest is far smaller: remove the aliases"))
        if len(stack) + (stack[-1][1] if stack else 0) > MAX_DEPTH:
            raise SimgateError(located(source, line, f"the document nests deeper than {MAX_DEPTH} levels ({where}); "
                                                     "flatten it"))
    return events


def _walk(node, path: Path_, lines: dict, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise SimgateError(located(source, line, f"{dotted(path)}: a key must be a plain name, "
                                                         "not a list or a mapping"))
            key = key_node.value
            if key in seen:
                raise SimgateError(located(source, line, f"{dotted(path + (key,))}: key {key!r} appears twice; keep one"))
            seen.add(key)
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), lines, source)


def _non_finite(value, path: Path_, lines: dict, source: str):
    """A located message for every .nan / .inf: no threshold, parameter or horizon may be one (a
    NaN compares false with everything, so a NaN threshold would pass any policy)."""
    if isinstance(value, float) and not math.isfinite(value):
        shown = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        yield located(source, line_of(lines, path), f"{dotted(path)}: {shown} is not a finite number; write a number")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, path + (key,), lines, source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite(item, path + (index,), lines, source)


def dotted(path: Path_) -> str:
    """``perturbations[0].params.sliding`` for a path tuple."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    path = tuple(path)
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path)
