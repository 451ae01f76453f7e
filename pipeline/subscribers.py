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
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from pipeline.errors import Problem, SettingsError
from pipeline.models import Subscriber, Topic
from pipeline.taxonomy import ARXIV_CATEGORIES, closest_category, is_category

log = logging.getLogger(__name__)

_COMMON_WORDS = """
a about above after all also an and any are as at be been but by can could did do does each for
from had has have how if in into is it its more most no not of on only or other our out over she
so some such than that the their them then there these they this those through to under up very
was we were what when where which while who why will with would you your
"""
#: Words too common to single out a paper; a keyword made only of them is refused.
STOPWORDS = frozenset(_COMMON_WORDS.split())

#: libyaml's safe loader where PyYAML was built with it (it is, in the wheels): the same nodes and
#: line marks as the pure-Python one, several times faster on a large subscribers file.
_LIBYAML = hasattr(yaml, "CSafeLoader")
if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_NODES = 10_000  # values in one subscriber entry; a YAML alias bomb stops here
MAX_DEPTH = 20  # lists and mappings nested in one entry; a subscriber file needs four
MAX_NAME = 200  # characters of a display name (it goes into the To header)
MAX_TERM = 200  # characters of a keyword, author, category, topic name or exclusion
MAX_WEIGHT = 100.0


def _one_or_many(value: Any) -> Any:
    """``keywords: diffusion model`` (one text) reads as a list of that one keyword."""
    return [value] if isinstance(value, str) else value


def _folded(value: Any) -> Any:
    """``Friday`` and ``WEEKLY`` read as ``friday`` and ``weekly``."""
    return value.lower() if isinstance(value, str) else value


def _meaningful(keyword: str) -> str:
    """Refuse a keyword made only of common words: "the" or "a" matches every paper; and one
    with no letter or digit at all (``.*``, an emoji), which could never match a word."""
    words = re.findall(r"\w+", keyword.lower())
    if not words:
        raise ValueError(f"{keyword!r} has no letters or digits to match")
    if all(word in STOPWORDS for word in words):
        raise ValueError(f"{keyword!r} is too common a word: it would match almost every paper")
    return keyword


def _known_category(category: str) -> str:
    if not is_category(category):
        hint = closest_category(category)
        raise ValueError(
            f"{category!r} is not an arXiv category"
            + (
                f" (did you mean '{hint}'?)"
                if hint
                else " (see https://arxiv.org/category_taxonomy)"
            )
        )
    return category


def _any_case(words: Iterable[str]) -> str:
    """A JSON-Schema pattern matching any of ``words`` in any letter case."""
    return "^(" + "|".join("".join(f"[{c}{c.upper()}]" for c in w) for w in words) + ")$"


NonEmptyStr = Annotated[str, Field(min_length=1)]
Term = Annotated[str, Field(min_length=1, max_length=MAX_TERM)]
Keyword = Annotated[Term, AfterValidator(_meaningful)]
Category = Annotated[
    Term, AfterValidator(_known_category), WithJsonSchema({"enum": list(ARXIV_CATEGORIES)})
]


def _terms(item: Any, min_items: int = 0) -> Any:
    """A list field that also takes one text for a list of one (``authors: Ada Lovelace``)."""
    many = Annotated[list[item], Field(min_length=min_items)]
    return Annotated[
        list[item],
        BeforeValidator(_one_or_many, json_schema_input_type=item | many),
    ]


def _any_case_literal(words: tuple[str, ...]) -> Any:
    return Annotated[
        Literal[words],
        BeforeValidator(
            _folded,
            json_schema_input_type=Annotated[str, Field(pattern=_any_case(words))],
        ),
    ]


#: An arXiv id, new style (2310.06110, maybe with a version) or old style (hep-th/9901001).
ArxivId = Annotated[
    str, Field(pattern=r"^(?:\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
]
MAX_LIKED = 50  # example papers one subscriber may name


class _TopicModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, title="topic")

    name: Term = Field(description="What the digest calls this topic.")
    keywords: _terms(Keyword, 1) = Field(  # type: ignore[valid-type]
        min_length=1, description="Words or phrases that make a paper match this topic."
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        le=MAX_WEIGHT,
        allow_inf_nan=False,
        description="How much this topic counts against the others.",
    )


def ascii_address(address: str) -> str:
    """The address as it goes out: an internationalised domain as ASCII (punycode), so envelope
    and headers stay ASCII. A non-ASCII local part would need SMTPUTF8, which papermail does not
    use: it is refused here, so ``check`` and ``run`` agree. (It validates as pydantic's
    ``EmailStr`` does, with the same message, in one pass.)"""
    try:
        ascii_email = validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    if ascii_email is None:
        raise ValueError(
            f"{address}: a non-ASCII part before the @ is not supported "
            "(it needs SMTPUTF8, which papermail does not use)"
        )
    return ascii_email


class _SubscriberModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        title="papermail subscriber",
        json_schema_extra={  # the rules across fields, as _combination_problems checks them
            "anyOf": [
                {"required": ["topics"], "properties": {"topics": {"minItems": 1}}},
                {"required": ["authors"], "properties": {"authors": {"minItems": 1}}},
            ],
            "if": {
                "required": ["frequency"],
                "properties": {"frequency": {"pattern": _any_case(["weekly"])}},
            },
            "then": {"required": ["weekday"]},
        },
    )

    email: Annotated[
        str, AfterValidator(ascii_address), WithJsonSchema({"type": "string", "format": "email"})
    ]
    name: str | None = Field(default=None, max_length=MAX_NAME)
    topics: list[_TopicModel] = []
    authors: _terms(Term) = []  # type: ignore[valid-type]
    categories: _terms(Category) = []  # type: ignore[valid-type]
    exclude: _terms(Keyword) = []  # type: ignore[valid-type]
    max_papers: int = Field(default=10, ge=1, le=100)
    min_upvotes: int = Field(default=0, ge=0, le=1_000_000)
    send_empty: bool = False
    frequency: _any_case_literal(("daily", "weekly")) = "daily"  # type: ignore[valid-type]
    weekday: _any_case_literal(WEEKDAYS) | None = None  # type: ignore[valid-type]
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
    """Load a YAML file, or every ``*.yaml``/``*.yml`` file of a directory (the suffix in any
    letter case), in name order. A directory that cannot be read, or no subscriber at all, is a
    problem (exit 65); entries that are not regular files are skipped with a warning."""
    if not path.exists():
        raise SettingsError(
            f"subscribers path not found: {path} (set PAPERMAIL_SUBSCRIBERS or --subscribers)"
        )
    subscribers: list[Subscriber] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    rejected = 0
    with _gc_paused():
        for file in _subscriber_files(path, problems):
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
    if not subscribers and not problems:
        problems.append(Problem(path, 0, "subscribers", NO_SUBSCRIBERS))
    return SubscriberSet(tuple(subscribers), tuple(problems), rejected)


NO_SUBSCRIBERS = "no subscribers found (expected *.yaml or *.yml files with at least one entry)"
SUFFIXES = (".yaml", ".yml")


def _subscriber_files(path: Path, problems: list[Problem]) -> list[Path]:
    """The files to load from ``path``; a directory that cannot be listed adds a problem."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        problems.append(Problem(path, 0, "subscribers", "is neither a file nor a directory"))
        return []
    try:
        names = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
    except OSError as exc:
        problems.append(Problem(path, 0, "subscribers", f"cannot be read ({_reason(exc)})"))
        return []
    files = []
    for candidate in names:
        if candidate.is_file():  # a symlink to a regular file counts as that file
            files.append(candidate)
        else:
            log.warning("skipping %s: %s", candidate, _not_a_file(candidate))
    return files


def _not_a_file(path: Path) -> str:
    """Why ``path`` is not read: what it is instead."""
    if path.is_symlink() and not path.exists():
        return "a broken symbolic link"
    if path.is_dir():
        return "a directory"
    if path.is_fifo():
        return "a named pipe (FIFO)"
    if path.is_socket():
        return "a socket"
    if path.is_block_device() or path.is_char_device():
        return "a device"
    return "not a regular file"


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


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


@dataclass(frozen=True, slots=True)
class _Entry:
    subscriber: Subscriber | None  # None: the entry (or the whole file) was rejected
    line: int


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree, by libyaml; a broken file is parsed again by the pure-Python parser,
    whose error messages say more ("expected ',' or ']', but got ':'")."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        if not _LIBYAML or _DEPTH_LIMIT in str(exc):  # the pure-Python parser would recurse
            raise
    return yaml.compose(text, Loader=yaml.SafeLoader)


_DEPTH_LIMIT = "maximum nesting depth"  # libyaml's words when flow collections nest past 1,000


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
        text = file.read_text(encoding="utf-8")
        node = _compose(text)
    except RecursionError:  # nesting deep enough to exhaust the composer's stack
        line = _deep_line(text)
        problems.append(Problem(file, line, "yaml", f"nested more than {MAX_DEPTH} deep"))
        yield _Entry(None, line)
        return
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        message = _one_line(str(exc.problem or exc))
        if _DEPTH_LIMIT in message:
            message = f"nested more than {MAX_DEPTH} deep"
        problems.append(Problem(file, line, "yaml", message))
        yield _Entry(None, line)
        return
    except OSError as exc:
        problems.append(Problem(file, 0, "file", f"cannot be read ({_reason(exc)})"))
        yield _Entry(None, 1)
        return
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(Problem(file, 1, "file", _one_line(str(exc))))
        yield _Entry(None, 1)
        return
    if node is None:
        problems.append(Problem(file, 1, "file", "is empty; expected a subscriber or a list"))
        yield _Entry(None, 1)
        return
    entries = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for entry in entries:
        yield _Entry(_validate(file, entry, problems), entry.start_mark.line + 1)


def _deep_line(text: str) -> int:
    """The line where lists and mappings first nest deeper than ``MAX_DEPTH``, found by
    reading the parser's events (a flat stream, no recursion)."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH + 1 and event.start_mark is not None:
                    return int(event.start_mark.line) + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:  # libyaml's own nesting limit, or a broken file
        if exc.problem_mark is not None:
            return int(exc.problem_mark.line) + 1
    except yaml.YAMLError:
        pass
    return 1


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
    except _TooDeep as exc:
        where, path = exc.args
        problems.append(
            Problem(file, where, _field_name(path), f"nested more than {MAX_DEPTH} deep")
        )
        return None
    except yaml.YAMLError as exc:  # e.g. a !!python tag the safe loader refuses
        mark = getattr(exc, "problem_mark", None)
        where = mark.line + 1 if mark else line
        problems.append(Problem(file, where, "yaml", _one_line(str(getattr(exc, "problem", exc)))))
        return None
    causes = [
        Problem(file, lines.get(path, line), _field_name(path), "duplicate key")
        for path in duplicates
    ]
    consequences = list(_combination_problems(file, line, data, lines))
    model: _SubscriberModel | None = None
    try:
        model = _SubscriberModel.model_validate(data)
    except ValidationError as exc:
        for problem, kind in _problems(file, line, exc.errors(), lines):
            (consequences if kind == "missing" else causes).append(problem)
        causes.extend(_problems_under_typos(file, line, data, lines))
    # Causes first (a typo'd key, a wrong value), then what they lead to (a field missing).
    found = sorted(causes, key=lambda p: p.line) + sorted(consequences, key=lambda p: p.line)
    found = list(dict.fromkeys(found))  # a misspelling inside a misspelling is found twice
    problems.extend(found)
    return _to_record(model, file) if model is not None and not found else None


def _problems_under_typos(
    file: Path, line: int, data: dict[Any, Any], lines: dict[_Loc, int]
) -> Iterator[Problem]:
    """The problems inside the value of a misspelt key (``topic:`` for ``topics:``), found by
    validating that value under the key it most likely means, and named by the key as written:
    one round of ``check`` shows them beside the misspelling."""
    renames: dict[_Loc, _Loc] = {}
    repaired = _renamed(data, FIELDS, (), (), renames)
    topics = repaired.get("topics")
    if isinstance(topics, list):
        written = renames.get(("topics",), ("topics",))
        repaired["topics"] = [
            _renamed(t, TOPIC_FIELDS, ("topics", i), (*written, i), renames)
            if isinstance(t, dict)
            else t
            for i, t in enumerate(topics)
        ]
    if not renames:
        return
    for written in renames.values():
        yield Problem(
            file, lines.get(written, line), _field_name(written), _unknown_key_message(written)
        )
    try:
        _SubscriberModel.model_validate(repaired)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            for prefix in sorted(renames, key=len, reverse=True):
                if loc[: len(prefix)] == prefix:
                    errors.append({**err, "loc": renames[prefix] + loc[len(prefix) :]})
                    break
        for problem, _kind in _problems(file, line, errors, lines):
            yield problem


def _renamed(
    data: dict[Any, Any],
    known: tuple[str, ...],
    path: _Loc,
    written: _Loc,
    renames: dict[_Loc, _Loc],
) -> dict[Any, Any]:
    """``data`` with each unknown key that is close to a known, absent one renamed to it;
    ``renames`` maps each new path to the path as written."""
    out = dict(data)
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        hint = difflib.get_close_matches(key, known, n=1)
        if hint and hint[0] not in out:
            out[hint[0]] = out.pop(key)
            renames[(*path, hint[0])] = (*written, key)
    return out


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


class _TooDeep(Exception):
    """Lists or mappings nested deeper than any subscriber needs (args: line, path)."""


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
        if len(path) > MAX_DEPTH:
            raise _TooDeep(node.start_mark.line + 1, path[:1])
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
    "finite_number": "expected a finite number",
}
BOUNDS = {  # pydantic error type → the bound it names, and how to say it
    "greater_than": ("gt", "must be more than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than": ("lt", "must be less than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "string_too_long": ("max_length", "is too long: at most {} characters"),
    "too_long": ("max_length", "has too many items: at most {}"),
}


def _problems(
    file: Path, line: int, errors: Iterable[Any], lines: dict[tuple[str | int, ...], int]
) -> Iterator[tuple[Problem, str]]:
    """Each pydantic error as a Problem in papermail's words, with the error's type."""
    for err in errors:
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
        elif kind in BOUNDS:
            bound, words = BOUNDS[kind]
            shown = "" if "too_long" in kind else f", got {_shown(err['input'])}"
            limit = err.get("ctx", {}).get(bound)
            message = words.format(f"{limit:g}" if isinstance(limit, float) else limit) + shown
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            message = f"expected one of {', '.join(choices)}; got {_shown(err['input'])}"
        elif kind in ("too_short", "string_too_short"):
            message = "must not be empty"
        yield Problem(file, _line_of(loc, lines, line), field, message), kind


def _shown(value: Any) -> str:
    """A short, quoted rendering of the offending value for a message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _field_name(loc: tuple[str | int, ...]) -> str:
    """``('topics', 0, 'keywords', 1)`` → ``topics[0].keywords[1]``; a key that is not plain
    printable text on one line is shown quoted (``'\\n'``), so a problem stays one line."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = str(part)
        if not name or not name.isprintable() or name.strip() != name:
            name = repr(name)
        out += f".{name}" if out else name
    return out


def _one_line(text: str) -> str:
    """A parser's message on one line (PyYAML's span several)."""
    return " ".join(text.split())


def _line_of(
    loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], default: int
) -> int:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return default


def _unknown_key_message(loc: tuple[str | int, ...]) -> str:
    known = TOPIC_FIELDS if len(loc) > 1 else FIELDS  # a topic is the only nested mapping
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


FIELD_HELP = {
    "email": "Where the digest goes; unique across all subscriber files.",
    "name": "How the digest greets the subscriber (optional).",
    "topics": "What the subscriber follows: at least one topic or one author.",
    "authors": "Papers by these people are always included.",
    "categories": "Also consider new arXiv papers in these categories (e.g. cs.LG).",
    "exclude": "Papers matching any of these words or phrases are left out.",
    "max_papers": "At most this many papers per digest (1 to 100).",
    "min_upvotes": "Leave out Daily Papers with fewer upvotes.",
    "send_empty": "Send a short 'nothing matched today' email on empty days.",
    "frequency": "daily, or weekly (then also a weekday).",
    "weekday": "The day a weekly digest goes out.",
    "paused": "Keep the file but send nothing.",
    "like": "arXiv ids of papers like the ones wanted: papers close to them are picked.",
}
SCHEMA_ID = "https://papermail.invalid/subscriber.schema.json"  # a name, not a place to fetch


def subscriber_schema() -> dict[str, Any]:
    """The JSON Schema of a subscriber file (one subscriber, or a list of them), generated from
    the model ``check`` validates with, so an editor checks the same fields while typing.

    The schema cannot say everything ``check`` does: e-mail syntax is only a ``format``, and
    keywords made only of common words, duplicates and repeated keys are caught by ``check``.
    """
    one = _SubscriberModel.model_json_schema(ref_template="#/$defs/{model}")
    defs = one.pop("$defs", {})
    defs["subscriber"] = one
    for name, words in FIELD_HELP.items():  # what an editor shows when hovering over a key
        one["properties"].get(name, {}).setdefault("description", words)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "papermail subscriber file",
        "description": "One subscriber, or a list of subscribers (see docs/subscribers.md).",
        "anyOf": [
            {"$ref": "#/$defs/subscriber"},
            {"type": "array", "items": {"$ref": "#/$defs/subscriber"}, "minItems": 1},
        ],
        "$defs": defs,
    }
