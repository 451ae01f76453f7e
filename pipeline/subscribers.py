"""Subscriber YAML files → validated ``Subscriber`` records, with every problem located.

The only module that imports yaml. Files are parsed with the safe loader's composer so that every
value keeps its line number; pydantic then validates the plain data strictly, and each error is
mapped back to ``file:line: field: message``. One bad file (or one bad entry in a list) never hides
the valid subscribers beside it.
"""

from __future__ import annotations

import difflib
import functools
import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from pipeline.errors import Problem, SettingsError
from pipeline.models import Subscriber, Topic

#: libyaml's safe loader where PyYAML was built with it (it is, in the wheels): the same nodes and
#: line marks as the pure-Python one, several times faster on a large subscribers file.
_LIBYAML = hasattr(yaml, "CSafeLoader")
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NonEmptyStr = Annotated[str, Field(min_length=1)]
MAX_NODES = 10_000  # values in one subscriber entry; a YAML alias bomb stops here
#: An arXiv id, new style (2310.06110, maybe with a version) or old style (hep-th/9901001).
ArxivId = Annotated[
    str, Field(pattern=r"^(?:\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
]
MAX_LIKED = 50  # example papers one subscriber may name


class _TopicModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: NonEmptyStr
    keywords: list[NonEmptyStr] = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)


class _SubscriberModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: EmailStr
    name: str | None = None
    topics: list[_TopicModel] = []
    authors: list[NonEmptyStr] = []
    categories: list[NonEmptyStr] = []
    exclude: list[NonEmptyStr] = []
    max_papers: int = Field(default=10, ge=1, le=100)
    min_upvotes: int = Field(default=0, ge=0)
    send_empty: bool = False
    frequency: Literal["daily", "weekly"] = "daily"
    weekday: Literal[WEEKDAYS] | None = None  # type: ignore[valid-type]
    paused: bool = False
    like: list[ArxivId] = Field(default=[], max_length=MAX_LIKED)


FIELDS = tuple(_SubscriberModel.model_fields)
TOPIC_FIELDS = tuple(_TopicModel.model_fields)


@dataclass(frozen=True, slots=True)
class SubscriberSet:
    """The valid subscribers found, every problem found beside them, and how many entries (or
    whole files) those problems made unusable."""

    subscribers: tuple[Subscriber, ...]
    problems: tuple[Problem, ...]
    rejected: int = 0


def load_subscribers(path: Path) -> SubscriberSet:
    """Load a YAML file, or every ``*.yaml``/``*.yml`` file of a directory, in name order."""
    if not path.exists():
        raise SettingsError(
            f"subscribers path not found: {path} (set PAPERMAIL_SUBSCRIBERS or --subscribers)"
        )
    files = [path] if path.is_file() else sorted(_yaml_files(path))
    subscribers: list[Subscriber] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    rejected = 0
    with _gc_paused():
        for file in files:
            for entry in _load_file(file, problems):
                if entry.subscriber is None:
                    rejected += 1
                    continue
                key = entry.subscriber.email.lower()
                if key in seen:
                    problems.append(
                        Problem(
                            file,
                            entry.line,
                            "email",
                            f"{entry.subscriber.email} is also in {seen[key]}",
                        )
                    )
                    rejected += 1
                    continue
                seen[key] = file
                subscribers.append(entry.subscriber)
    return SubscriberSet(tuple(subscribers), tuple(problems), rejected)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while files are composed and validated.

    A 2,000-entry file composes into some 150,000 nodes and marks, all alive until its last entry
    is validated; the collector would scan them again and again as they pile up (half the load
    time) though they hold no reference cycles. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _yaml_files(directory: Path) -> Iterator[Path]:
    for pattern in ("*.yaml", "*.yml"):
        yield from (p for p in directory.glob(pattern) if p.is_file())


@dataclass(frozen=True, slots=True)
class _Entry:
    subscriber: Subscriber | None  # None: the entry (or the whole file) was rejected
    line: int


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, by libyaml; a broken file is parsed again by the pure-Python parser,
    whose error messages say more ("expected ',' or ']', but got ':'")."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        if not _LIBYAML:
            raise
    return yaml.compose(text, Loader=yaml.SafeLoader)


class _Loader(_SafeLoader):
    """The safe loader with a quicker tag resolver; the tags it gives are the same.

    libyaml asks the pure-Python resolver for the tag of every node. A quoted scalar is always
    text; a plain one is matched against the safe schema's patterns once per distinct value (the
    same keys and small numbers recur in every entry): a sixth less time composing many files.
    """

    def resolve(self, kind: type[yaml.Node], value: str | None, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return _plain_scalar_tag(value) if implicit[0] else _STR_TAG
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


@functools.lru_cache(maxsize=1024)
def _plain_scalar_tag(value: str) -> str:
    """The tag of an unquoted, untagged scalar: bool, int, float, null, timestamp… or str."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, _PLAIN)  # type: ignore[no-untyped-call]
    return tag


_RESOLVER = yaml.resolver.Resolver()
_PLAIN = (True, False)  # (plain, quoted): how the parser marks an unquoted, untagged scalar


def _load_file(file: Path, problems: list[Problem]) -> Iterator[_Entry]:
    """Yield every entry of one file (None for a rejected one), appending a Problem for each
    thing wrong; a file that cannot be read at all yields one rejected entry."""
    try:
        node = _compose(file.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        problems.append(Problem(file, line, "yaml", str(exc.problem or exc)))
        yield _Entry(None, line)
        return
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(Problem(file, 1, "file", str(exc)))
        yield _Entry(None, 1)
        return
    if node is None:
        problems.append(Problem(file, 1, "file", "is empty; expected a subscriber or a list"))
        yield _Entry(None, 1)
        return
    entries = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for entry in entries:
        yield _Entry(_validate(file, entry, problems), entry.start_mark.line + 1)


def _validate(file: Path, node: yaml.Node, problems: list[Problem]) -> Subscriber | None:
    """One entry → a Subscriber, or None after appending every problem found in it."""
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(file, line, "subscriber", "expected a mapping of fields"))
        return None
    try:
        data, lines, duplicates = _plain(node)
    except _TooLarge:
        problems.append(Problem(file, line, "subscriber", f"more than {MAX_NODES} values"))
        return None
    except yaml.YAMLError as exc:  # e.g. a !!python tag the safe loader refuses
        mark = getattr(exc, "problem_mark", None)
        where = mark.line + 1 if mark else line
        problems.append(Problem(file, where, "yaml", str(getattr(exc, "problem", exc))))
        return None
    found = [
        Problem(file, lines.get(path, line), _field_name(path), "duplicate key")
        for path in duplicates
    ]
    found.extend(_combination_problems(file, line, data, lines))
    model: _SubscriberModel | None = None
    try:
        model = _SubscriberModel.model_validate(data)
    except ValidationError as exc:
        found.extend(_problems(file, line, exc, lines))
    problems.extend(sorted(found, key=lambda p: p.line))
    return _to_record(model, file) if model is not None and not found else None


def _combination_problems(
    file: Path, line: int, data: dict[Any, Any], lines: dict[tuple[str | int, ...], int]
) -> Iterator[Problem]:
    """Rules across fields, checked even when a field itself is invalid (all problems at once)."""
    if not data.get("topics") and not data.get("authors"):
        where = lines.get(("topics",), lines.get(("authors",), line))
        yield Problem(file, where, "topics", "needs at least one topic or one author")
    if data.get("frequency") == "weekly" and data.get("weekday") is None:
        yield Problem(
            file,
            lines.get(("frequency",), line),
            "weekday",
            "frequency: weekly needs a weekday (monday … sunday)",
        )


_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _TooLarge(Exception):
    """An entry with more values than any subscriber needs (e.g. an alias bomb)."""


_Loc = tuple[str | int, ...]  # where a value is: ('topics', 0, 'keywords', 1)


def _plain(node: yaml.MappingNode) -> tuple[dict[Any, Any], dict[_Loc, int], list[_Loc]]:
    """Turn a composed YAML mapping into plain data, the line of every path, and repeated keys."""
    walk = _Walk()
    walk.lines[()] = node.start_mark.line + 1
    data: dict[Any, Any] = walk.value(node, ())
    return data, walk.lines, walk.duplicates


class _Walk:
    """One entry's walk over its nodes, counting them against ``MAX_NODES``.

    A class rather than a recursive closure: a closure that calls itself is a reference cycle,
    which kept every entry's ``lines`` alive until the cyclic garbage collector ran.
    """

    __slots__ = ("budget", "duplicates", "lines")

    def __init__(self) -> None:
        self.lines: dict[_Loc, int] = {}
        self.duplicates: list[_Loc] = []
        self.budget = MAX_NODES

    def value(self, node: yaml.Node, path: _Loc) -> Any:
        """The plain value of ``node``, whose line the caller has recorded under ``path``."""
        self.budget -= 1
        if self.budget < 0:
            raise _TooLarge
        if isinstance(node, yaml.ScalarNode):
            if len(path) == 2 and path[0] == "like":  # ids as written: 2310.06110 is no number
                return node.value
            return _scalar(node)
        if node.tag not in _COLLECTION_TAGS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"could not determine a constructor for the tag {node.tag!r}",
                node.start_mark,
            )
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node.value, path)
        return self.sequence(node.value, path)

    def mapping(self, pairs: list[tuple[yaml.Node, yaml.Node]], path: _Loc) -> dict[Any, Any]:
        """Keys as written (the first of a repeated key wins; the repeat is recorded)."""
        out: dict[Any, Any] = {}
        lines = self.lines
        for key_node, value_node in pairs:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a name, not a list or mapping", key_node.start_mark
                )
            key = key_node.value
            where = (*path, key)
            lines[where] = key_node.start_mark.line + 1
            if key in out:
                self.duplicates.append(where)
                continue
            out[key] = self.value(value_node, where)
        return out

    def sequence(self, items: list[yaml.Node], path: _Loc) -> list[Any]:
        """Items in order, each at its own line."""
        out = []
        lines = self.lines
        for i, item in enumerate(items):
            where = (*path, i)
            lines[where] = item.start_mark.line + 1
            out.append(self.value(item, where))
        return out


#: The safe loader's constructors for null, booleans and numbers, called directly (they keep no
#: state): a new constructor and its bookkeeping for every scalar was most of the walk's time.
_SCALAR_CONSTRUCTORS = {
    tag: yaml.constructor.SafeConstructor.yaml_constructors[tag]
    for tag in (f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float"))
}
_SAFE_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: yaml.ScalarNode) -> Any:
    """A scalar's value, as the safe loader would construct it: text as written; null, booleans
    and numbers directly; any other tag (timestamp, binary, an unknown one that raises) the slow,
    general way."""
    if node.tag == _STR_TAG:
        return node.value
    try:
        construct = _SCALAR_CONSTRUCTORS.get(node.tag)
        if construct is not None:
            return construct(_SAFE_CONSTRUCTOR, node)
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (ValueError, KeyError, TypeError) as exc:  # e.g. !!int "x", !!bool "maybe"
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"{node.value!r} is not a valid {node.tag.rpartition(':')[2]}",
            node.start_mark,
        ) from exc


EXPECTED = {  # pydantic error type → what the field wants, in the words of a YAML file
    "list_type": "expected a list, e.g. [a, b]",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "model_type": "expected a mapping with name and keywords",
    "dict_type": "expected a mapping",
    "string_pattern_mismatch": "expected an arXiv id, e.g. 2310.06110",
}


def _problems(
    file: Path, line: int, exc: ValidationError, lines: dict[tuple[str | int, ...], int]
) -> Iterable[Problem]:
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = _field_name(loc) or "subscriber"
        kind = err["type"]
        message = str(err["msg"]).removeprefix("Value error, ")
        message = message.replace(
            "value is not a valid email address", "not a valid e-mail address"
        )
        if kind == "extra_forbidden":
            message = _unknown_key_message(loc)
        elif kind == "missing":
            message = "is required"
        elif kind in EXPECTED:
            message = f"{EXPECTED[kind]}, got {_shown(err['input'])}"
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            message = f"expected one of {', '.join(choices)}; got {_shown(err['input'])}"
        elif kind == "too_short":
            message = "must not be empty"
        yield Problem(file, _line_of(loc, lines, line), field, message)


def _shown(value: Any) -> str:
    """A short, quoted rendering of the offending value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _field_name(loc: tuple[str | int, ...]) -> str:
    """``('topics', 0, 'keywords', 1)`` → ``topics[0].keywords[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(
    loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], default: int
) -> int:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return default


def _unknown_key_message(loc: tuple[str | int, ...]) -> str:
    known = TOPIC_FIELDS if "topics" in loc[:-1] else FIELDS
    hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return "unknown key" + (
        f" (did you mean '{hint[0]}'?)" if hint else f"; known: {', '.join(known)}"
    )


def _to_record(model: _SubscriberModel, file: Path) -> Subscriber:
    return Subscriber(
        email=str(model.email),
        name=model.name,
        topics=tuple(Topic(t.name, tuple(t.keywords), t.weight) for t in model.topics),
        authors=tuple(model.authors),
        categories=tuple(model.categories),
        exclude=tuple(model.exclude),
        max_papers=model.max_papers,
        min_upvotes=model.min_upvotes,
        send_empty=model.send_empty,
        frequency=model.frequency,
        weekday=model.weekday,
        paused=model.paused,
        source_file=file,
        like=tuple(dict.fromkeys(re.sub(r"v\d+$", "", i) for i in model.like)),
    )
