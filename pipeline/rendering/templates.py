"""The Jinja2 side: template names, the environment they are loaded with, and error locations.

Shared by the ``Renderer`` (the reference pipeline) and the stencils, so both load the templates
the same way and report a template error as ``file:line: message``.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import jinja2

from pipeline.rendering.views import wrap

HTML_TEMPLATE = "digest.mjml.j2"  # with {% block card scoped %} and {% block reason scoped %}
TEXT_TEMPLATE = "digest.txt.j2"


def environment(
    templates_dir: Path, *, autoescape: bool, loader: jinja2.BaseLoader | None = None
) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader or jinja2.FileSystemLoader(templates_dir),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    return env


def locate(exc: jinja2.TemplateError) -> str:
    """``file:line: message`` for an error raised while a template was being filled in."""
    where: tuple[str, int] | None = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename.endswith(".j2"):
            where = (frame.f_code.co_filename, lineno)
    if where is None:
        line: int | None = getattr(exc, "lineno", None)
        name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "template"
        return f"{name}:{line}: {exc}" if line else f"{name}: {exc}"
    return f"{where[0]}:{where[1]}: {exc}"
