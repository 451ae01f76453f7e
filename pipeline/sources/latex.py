"""LaTeX in upstream titles and abstracts made readable as plain Unicode text.

``$φ^3$`` → ``φ³``, ``$\\pi_0$`` → ``π₀``, ``Schr\\"odinger`` → ``Schrödinger``. pylatexenc
(the only module that imports it) turns macros into Unicode; a small pass before it turns sub- and
superscripts into Unicode sub- and superscript characters where every character has one, and
into ``_x`` / ``^(xy)`` where not.

Only math (``$…$``, ``$$…$$``, ``\\(…\\)``) and backslash commands are handed to pylatexenc:
plain text around them keeps its ``%`` and ``&``, which LaTeX would read as a comment and a
column separator. A ``$`` counts as a math delimiter by pandoc's rule (no space inside either
delimiter, no digit right after the closing one), so "costs $5 and $10" stays as it is.
"""

from __future__ import annotations

import re

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
from pylatexenc.latexwalker import LatexWalkerError

_GROUP = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"  # braces nested up to three deep
_MATH = re.compile(
    r"(?<!\\)\$\$(?P<display>.+?)(?<!\\)\$\$"
    r"|\\\((?P<paren>.+?)\\\)"
    r"|(?<![\\$])\$(?=[^\s$])(?P<inline>(?:\\.|[^$\\])+?)(?<=\S)(?<!\\)\$(?!\d)",
    re.DOTALL,
)
_LOOSE_MATH = re.compile(r"(?<!\\)\$(?P<loose>[^$]*[\\^_{}][^$]*)(?<!\\)\$")
_COMMAND = re.compile(
    rf"\\(?:[A-Za-z]+\*?(?:\s*{_GROUP})*|[\"'`^~=.](?:\{{[A-Za-z]\}}|[A-Za-z])|[{{}}%&$#_])"
)
_SCRIPT = re.compile(rf"(?P<op>[_^])\s*(?P<arg>{_GROUP}|\\[A-Za-z]+|[^\s{{}}\\])")
_BARE = re.compile(r"\\[A-Za-z]+\*?\s*|[{}]")
_PLACEHOLDER = re.compile("[\ue000-\uf8ff]")  # private-use characters stand in for scripts

_SUPERSCRIPTS = dict(
    zip(
        "0123456789+-−=()abcdefghijklmnoprstuvwxyzABDEGHIJKLMNOPRTUVW⊤αβγδθφχ",
        "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂᵀᵅᵝᵞᵟᶿᵠᵡ",
        strict=True,
    )
)
_SUBSCRIPTS = dict(
    zip(
        "0123456789+-−=()aehijklmnoprstuvxβγρφχ",
        "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ",
        strict=True,
    )
)
_AS_IS = frozenset(",*′″'†‡∗")  # already look raised (or are punctuation) in any position

_KEEP_ARGUMENT = ("textsf", "texttt", "textup", "textmd", "mbox")  # pylatexenc drops these


def _converter() -> LatexNodes2Text:
    """pylatexenc's converter, keeping the text of a few font macros it would otherwise drop."""
    context = get_default_latex_context_db()
    context.add_context_category(
        "papermail",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl="%(1)s") for name in _KEEP_ARGUMENT],
    )
    return LatexNodes2Text(latex_context=context, strict_latex_spaces="based-on-source")


_TO_TEXT = _converter()


MAX_DEPTH = 20  # braces nested deeper than this are not a title's LaTeX: kept as written


def latex_to_unicode(text: str) -> str:
    """Replace the LaTeX in ``text`` (math and commands) by readable Unicode; leave the rest.

    Text whose braces nest deeper than ``MAX_DEPTH`` is returned as written: pylatexenc reads
    nested groups recursively and would exhaust the stack on hostile input.
    """
    if "$" not in text and "\\" not in text:
        return text
    if _brace_depth(text) > MAX_DEPTH:
        return text
    try:
        return _converted(text)
    except RecursionError:
        return text


def _brace_depth(text: str) -> int:
    """How deep ``{`` nests in ``text`` (unbalanced closing braces ignored)."""
    depth = deepest = 0
    for match in _BRACE.finditer(text):
        depth = depth + 1 if match.group() == "{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    return deepest


_BRACE = re.compile(r"(?<!\\)[{}]")


def _converted(text: str) -> str:
    text = _MATH.sub(lambda m: convert_math(_body(m)), text)
    text = _LOOSE_MATH.sub(lambda m: convert_math(m.group("loose")), text)
    return _COMMAND.sub(lambda m: _to_text(m.group(0)), text)


def convert_math(source: str) -> str:
    """One math expression → Unicode, sub- and superscripts included."""
    scripts: list[str] = []

    def stash(match: re.Match[str]) -> str:
        scripts.append(_script(match.group("op"), match.group("arg")))
        return chr(0xE000 + len(scripts) - 1) if len(scripts) <= 0x18FF else ""

    converted = _to_text(_SCRIPT.sub(stash, source))
    return _PLACEHOLDER.sub(lambda m: _restore(m.group(0), scripts), converted).strip()


def _script(op: str, arg: str) -> str:
    """``^3`` → ``³``, ``_{\\mathrm{max}}`` → ``ₘₐₓ``; ``^{\\mathcal{D}}`` → ``^𝒟`` (no glyph)."""
    inner = convert_math(arg[1:-1] if arg.startswith("{") else arg)
    table = _SUPERSCRIPTS if op == "^" else _SUBSCRIPTS
    if inner and all(c in table or c in _AS_IS for c in inner):
        return "".join(table.get(c, c) for c in inner)
    return f"{op}{inner}" if len(inner) <= 1 else f"{op}({inner})"


def _restore(placeholder: str, scripts: list[str]) -> str:
    index = ord(placeholder) - 0xE000
    return scripts[index] if index < len(scripts) else ""


def _body(match: re.Match[str]) -> str:
    return next(g for g in match.group("display", "paren", "inline") if g is not None)


def _to_text(source: str) -> str:
    """pylatexenc's reading of ``source``; without commands and braces if it cannot parse."""
    try:
        converted: str = _TO_TEXT.latex_to_text(source)
    except (LatexWalkerError, IndexError, KeyError, TypeError, ValueError):  # its odd-input errors
        return _BARE.sub("", source)
    return converted
