"""jobs.yaml as YAML: parsed once (libyaml when present), bounded against alias bombs and deep
nesting, with the line of every value and every duplicate key. The only module that imports
yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from scheduler.errors import ConfigError, Problem


@dataclass
class Located:
    data: Any
    lines: dict[tuple[str | int, ...], int]
    duplicates: list[str]


_BOOL_TAG = "tag:yaml.org,2002:bool"
_STR_TAG = "tag:yaml.org,2002:str"


def _walk(
    node: yaml.Node, path: tuple[str | int, ...], lines: dict[Any, int], out: list[str]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _BOOL_TAG:
                # Every key of jobs.yaml is a name: `on:` (notify.on) is the word, not YAML
                # 1.1's boolean true.
                key_node.tag = _STR_TAG
            key = str(key_node.value)
            if key in seen:
                out.append(f"{node.start_mark.line + 1}:{key_node.start_mark.line + 1}:{key}")
            seen.add(key)
            _walk(value_node, (*path, key), lines, out)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, out)


_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """libyaml's parser when PyYAML was built with it (a 1,000-job file parses ten times
    faster). Nothing in jobs.yaml is a date: 2026-02-30 stays text for the field to judge,
    instead of failing inside the YAML library."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
    }


_LOADER: Any = _Loader

# Bounds on what a jobs.yaml may hold. A node tree shares aliased nodes, so composing a "billion
# laughs" is cheap; everything after it (line numbers, ${VAR}, validation) walks the expanded
# tree. A real file is far inside these: 1,000 jobs are about 30,000 values, 8 levels deep.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_VALUES = 250_000
MAX_DEPTH = 40
TOO_LARGE = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: not read"


def _compose_and_construct(text: str, file: str) -> Located:
    """Parse once: the node tree (for line numbers and duplicate keys) and, once the tree is
    known to be within bounds, the data built from it."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None, {}, [])
        _check_bounds(node, file)
        located = Located(None, {}, [])
        # Walk before constructing: construction merges `<<` keys into the node, where a key
        # that overrides a merged one would look like a duplicate.
        _walk(node, (), located.lines, located.duplicates)
        located.data = loader.construct_document(node)
        return located
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_bounds(root: yaml.Node, file: str) -> None:
    """Measure the tree as it is once aliases are expanded, without expanding it: each distinct
    collection once (post-order, iteratively), its expanded size and height from its children's.
    Scalars (most nodes) count 1 and are not visited on their own."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    path: set[int] = set()  # collections entered and not yet left: the current one's ancestors
    stack: list[tuple[yaml.Node, list[yaml.Node] | None]] = [(root, None)]
    distinct = 0  # values written out in the file (an aliased scalar counts at each alias)
    while stack:
        node, children = stack.pop()
        key = id(node)
        if children is not None:  # leaving: every child collection is measured
            path.discard(key)
            size[key] = 1 + sum(size.get(id(c), 1) for c in children)
            height[key] = 1 + max((height.get(id(c), 1) for c in children), default=0)
            _check_node(node, size[key], height[key], distinct, file)
        elif key not in size:
            children = _children(node)
            distinct += 1 + sum(isinstance(c, yaml.ScalarNode) for c in children)
            path.add(key)
            stack.append((node, children))
            for child in children:
                if isinstance(child, yaml.ScalarNode):
                    continue
                if id(child) in path:
                    raise _bounds_error(child, file, "an alias refers to itself (a cycle)")
                stack.append((child, None))


def _check_node(node: yaml.Node, size: int, height: int, distinct: int, file: str) -> None:
    if height > MAX_DEPTH:
        raise _bounds_error(node, file, f"values are nested more than {MAX_DEPTH} levels deep")
    if size > MAX_VALUES:
        why = (
            f"more than {MAX_VALUES} values"
            if distinct > MAX_VALUES
            else f"aliases expand the value here to more than {MAX_VALUES} values (an alias bomb?)"
        )
        raise _bounds_error(node, file, f"too large: {why}")


def _bounds_error(node: yaml.Node, file: str, message: str) -> ConfigError:
    return ConfigError([Problem(file, node.start_mark.line + 1, message)])


def load_yaml(text: str, file: str) -> tuple[Located, list[Problem]]:
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError([Problem(file, None, TOO_LARGE)])
    try:
        located = _compose_and_construct(text, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        # libyaml appends where ("in <unicode string>, position 872") on lines of its own.
        problem = str(exc.problem or exc).splitlines()[0]
        raise ConfigError([Problem(file, line, f"invalid YAML: {problem}")]) from exc
    except yaml.YAMLError as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError([Problem(file, None, f"invalid YAML: {problem}")]) from exc
    except RecursionError as exc:  # the pure-Python parser recurses per level (libyaml stops)
        message = f"values are nested more than {MAX_DEPTH} levels deep"
        raise ConfigError([Problem(file, None, message)]) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag it cannot build
        message = f"invalid YAML: a tagged value cannot be read ({type(exc).__name__})"
        raise ConfigError([Problem(file, None, message)]) from exc
    problems = [
        Problem(file, int(d.split(":")[1]), f"duplicate key '{d.split(':', 2)[2]}'")
        for d in located.duplicates
    ]
    return located, problems


def line_of(located: Located, path: tuple[str | int, ...]) -> int | None:
    """The line of `path`, or of its nearest ancestor below the root (the root is line 1, which
    says nothing about a section that is absent)."""
    if not path:
        return located.lines.get(())
    for end in range(len(path), 0, -1):
        if path[:end] in located.lines:
            return located.lines[path[:end]]
    return None


def job_ids(path: Path) -> list[str]:
    """The job ids a jobs.yaml names, read as plain YAML (nothing checked, no variables
    resolved), for shell completion; none when the file cannot be read or parsed."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError):
        return []
    jobs = document.get("jobs") if isinstance(document, dict) else None
    ids = [j.get("id") for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
    return [i for i in ids if isinstance(i, str)]
