"""YAML with a line number for every key and list item, so errors can point at the file."""

from __future__ import annotations

import yaml

from simgate.errors import SimgateError, located

Path_ = tuple  # ("perturbations", 0, "params", "sliding")
#: libyaml's loader where PyYAML was built with it: every xdist worker parses every scenario
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str, source: str) -> tuple[object, dict[Path_, int]]:
    """Parse ``text`` safely; return the data and ``{path: line}`` (1-based)."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SimgateError(located(source, line, f"not valid YAML: {problem}")) from None
    if node is None:
        return None, {}
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    _walk(node, (), lines, source)
    return yaml.load(text, Loader=_LOADER), lines  # noqa: S506 (a safe loader)


def _walk(node, path: Path_, lines: dict, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise SimgateError(located(source, line, f"{dotted(path + (key,))}: key {key!r} appears twice; keep one"))
            seen.add(key)
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), lines, source)


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
