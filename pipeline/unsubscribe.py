"""How a subscriber leaves: the links the List-Unsubscribe header and the email's footer offer.

One function for both, so the body can never link somewhere the header does not (the address is
percent-encoded: ``ann+papers@example.org`` must not reach the server as "ann papers").
"""

from __future__ import annotations

from urllib.parse import quote

from pipeline.text import one_line


def mailto_link(from_address: str) -> str:
    """The mailto link that asks the sender to unsubscribe (RFC 2369)."""
    return f"mailto:{from_address}?subject=unsubscribe"


def web_link(email: str, unsubscribe_url: str | None) -> str | None:
    """``PAPERMAIL_UNSUBSCRIBE_URL`` with ``{email}`` filled in, percent-encoded; None unset."""
    if not unsubscribe_url:
        return None
    return one_line(unsubscribe_url.replace("{email}", quote(email, safe="@")))


def unsubscribe_links(email: str, from_address: str, unsubscribe_url: str | None) -> list[str]:
    """Every way to unsubscribe, best first: the web link when configured, then the mailto."""
    web = web_link(email, unsubscribe_url)
    return [web, mailto_link(from_address)] if web else [mailto_link(from_address)]
