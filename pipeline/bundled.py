"""The files that ship with papermail: the email templates and the example subscribers.

They are edited at the top of the checkout (``templates/``, ``examples/subscribers/``); building
the package maps those folders into it (``pipeline/templates``, ``pipeline/examples``, see
``pyproject.toml``), so an installed papermail — pip, pipx, a wheel, with no checkout around it —
finds them beside its code. In a checkout (an editable install) the package has no such folders
and the checkout's own are used, so an edit shows at once.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _shipped(in_package: str, in_checkout: str) -> Path:
    """The folder inside the installed package when it is there, else the checkout's."""
    packaged = _PACKAGE / in_package
    return packaged if packaged.is_dir() else _CHECKOUT / in_checkout


#: The email templates (``digest.mjml.j2``, ``digest.txt.j2``); ``PAPERMAIL_TEMPLATES`` overrides.
TEMPLATES = _shipped("templates", "templates")

#: The example subscribers (Ada, Grace, Alan paused) that ``papermail demo`` serves.
EXAMPLE_SUBSCRIBERS = _shipped("examples/subscribers", "examples/subscribers")
