"""Rendering: escaping, inlined styles, kept media queries, the text part, the size guard."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
from datetime import date
from pathlib import Path
from typing import Literal

import premailer
import pytest

from pipeline.cli import main
from pipeline.delivery.message import compose
from pipeline.errors import TemplateError
from pipeline.models import Digest, Reason, ReasonKind, ScoredPaper
from pipeline.rendering import (
    GMAIL_CLIP_BYTES,
    HTML_BUDGET,
    OVERVIEW_FROM,
    SHORT_TLDR_CHARS,
    Renderer,
    compile_mjml,
    inline_css,
    preheader,
    subject_for,
    tldr,
    wire_bytes,
)
from pipeline.rendering import html as html_module
from pipeline.rendering.renderer import wire_bytes_bound
from pipeline.settings import DEFAULT_TEMPLATES, load_settings
from tests.builders import DAY, SUBSCRIBER, digest, paper
from tests.conftest import SmtpServer, no_sleep

NASTY = "Attention <is> all & you {{ need }}"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The shipped templates, compiled once for the whole module (as a run does)."""
    return Renderer(DEFAULT_TEMPLATES, unsubscribe_url="https://example.org/unsubscribe?u={email}")


def style_blocks(html: str) -> str:
    """Everything inside the HTML's <style> elements."""
    return "\n".join(re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL))


def test_untrusted_title_stays_text_in_html_text_and_subject(renderer: Renderer) -> None:
    """Markup and Jinja syntax in a title are shown literally, never interpreted."""
    email = renderer.render(digest(paper(title=NASTY, ai_summary=f"Summary: {NASTY}")))
    assert "Attention &lt;is&gt; all &amp; you {{ need }}" in email.html
    assert "<is>" not in email.html
    assert NASTY in email.text
    assert NASTY in email.subject
    assert "\n" not in email.subject


def test_control_characters_in_a_name_or_reason_reach_neither_part(renderer: Renderer) -> None:
    """A subscriber's name, a file name or a reason with control characters (a YAML escape can
    write them) is shown with spaces instead: HTML may not hold them, nor should plain text."""
    subscriber = dataclasses.replace(
        SUBSCRIBER, name="Ada\x01 \x0bLove\x7flace", source_file=Path("subs/a\x1bda.yaml")
    )
    reason = Reason(ReasonKind.TOPIC, "Grok\x07king", ("grok\x00king",))
    scored = ScoredPaper(paper(), 2.0, (reason,))
    email = renderer.render(Digest(subscriber, DAY, (scored,)))
    controls = {chr(c) for c in (*range(32), 127)} - {"\n", "\r", "\t"}
    assert not controls & set(email.html)
    assert not controls & set(email.text)
    assert "Ada Love lace" in email.html
    assert "Ada Love lace" in email.text
    assert "a da.yaml" not in email.text, "no preferences URL: the footer says reply"
    with_url = Renderer(DEFAULT_TEMPLATES, preferences_url="https://example.org/subs").render(
        Digest(subscriber, DAY, (scored,))
    )
    assert "a da.yaml" in with_url.text


def test_subject_folds_whitespace_and_clips_long_titles() -> None:
    """The subject is one line, whatever the title holds, and stays short."""
    subject = subject_for(digest(paper(title="A\r\ntitle\twith " + "very " * 40 + "long end")))
    assert "\n" not in subject
    assert "\r" not in subject
    assert subject.startswith("A title with very")
    assert subject.endswith("… · 1 Jan")
    assert len(subject) < 110


def test_a_huge_word_in_the_title_is_clipped_inside_the_subject_not_dropped() -> None:
    """A short word then a 225-character word: the reader still sees the title's start."""
    subject = subject_for(digest(paper(title="hostile " + "x" * 225)))
    assert subject.startswith("hostile xxxxxxxxxx")
    assert subject.endswith("… · 1 Jan")
    assert len(subject) < 110


def test_the_subject_starts_with_the_top_title_then_how_many_more_and_the_day() -> None:
    """A phone shows the start of a subject: the paper, not the brand and the date."""
    top = "Chain-of-Thought Is Not Enough"
    assert subject_for(digest(paper(1, title=top), paper(2), paper(3))) == (
        f"{top} · +2 more · 1 Jan"
    )
    assert subject_for(digest(paper(1, title=top))) == f"{top} · 1 Jan"
    assert subject_for(digest()) == "Nothing matched your topics today · 1 Jan"
    assert "papermail" not in subject_for(digest(paper(1)))


def test_the_html_has_its_styles_inlined(renderer: Renderer) -> None:
    """Class styles are copied into style attributes, for clients that drop <style>."""
    html = renderer.render(digest(paper())).html
    assert re.search(r'<h2 class="title" style="[^"]*font-size:19px', html)
    assert re.search(r'<a class="title-link" href="[^"]+" style="[^"]*color:#1f2328', html)
    assert re.search(r'<strong class="why-label" style="[^"]*color:#2b3fa8', html)


def test_media_queries_stay_in_a_style_block_with_important(renderer: Renderer) -> None:
    """Dark mode and phone rules survive premailer, !important included."""
    css = style_blocks(renderer.render(digest(paper())).html)
    assert "@media (prefers-color-scheme: dark)" in css
    assert "@media only screen and (max-width: 480px)" in css
    dark = css[css.index("prefers-color-scheme: dark") :]
    assert re.search(r"\.title-link[^}]*color: #e6edf3 !important", dark)


def test_the_html_is_self_contained_and_declares_language_and_colour_schemes(
    renderer: Renderer,
) -> None:
    """lang set, light and dark declared, no images, no remote fonts, stylesheets or pixels."""
    html = renderer.render(digest(paper())).html
    assert '<html lang="en"' in html
    assert 'lang="und"' not in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert "<img" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert "url(" not in html
    assert not re.search(r"""src=["']?https?:""", html)


def test_rendering_uses_no_network(renderer: Renderer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a renderer and rendering open no socket connection at all."""

    def refuse(*_args: object) -> None:
        raise AssertionError("rendering tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = Renderer(DEFAULT_TEMPLATES)
    assert fresh.render(digest(paper())).html


def test_every_paper_shows_its_details_and_links(renderer: Renderer) -> None:
    """Title link, first authors then et al., reasons, TL;DR, counts and every link."""
    p = paper()
    email = renderer.render(digest(p))
    for part in (email.html, email.text):
        assert "Author0 Surname0, Author1 Surname1, Author2 Surname2 et al." in part
        assert "Author3 Surname3" not in part
        assert p.ai_summary is not None
        assert p.ai_summary[:60] in " ".join(part.split())
        for url in (p.url, p.pdf_url, p.github_url, p.project_url, f"https://arxiv.org/abs/{p.id}"):
            assert url is not None
            assert url in part
        assert "42 upvotes · 3 comments" in part, "counts in words, for screen readers"
        assert "▲" not in part
    assert f'<a class="title-link" href="{p.url}"' in email.html
    assert f'<a href="https://arxiv.org/abs/{p.id}"' in email.html
    assert ">arXiv</a>" in email.html
    assert "<strong>TL;DR</strong>" in email.html
    assert "Grokking &amp; training dynamics</strong> — matched <em>grokking" in email.html
    assert "Followed author</strong> — <em>Cengiz Pehlevan</em>" in email.html
    assert "+ Followed author — Cengiz Pehlevan" in email.text
    assert "+ Grokking & training dynamics — matched grokking, training dynamics" in email.text


def test_only_the_ai_summary_is_called_a_tldr(renderer: Renderer) -> None:
    """Without HF's summary, the abstract's opening is labelled as such, cut at a sentence."""
    abstract = "We study grokking in small transformers. It is sudden. " * 10
    email = renderer.render(digest(paper(ai_summary=None, abstract=abstract)))
    assert "TL;DR" not in email.html
    assert "TL;DR" not in email.text
    assert "<strong>From the abstract</strong> We study grokking" in email.html
    shown = tldr(paper(ai_summary=None, abstract=abstract))
    assert shown.endswith("It is sudden.")
    assert shown in email.text.replace("\n    ", " ")


def test_reasons_are_labelled_folded_and_any_kind_is_shown(renderer: Renderer) -> None:
    """A long term list folds to "+ N more"; a kind the renderer has no words for (the ranking
    adds semantic ones) shows its label and terms rather than failing."""
    terms = ("training dynamics", "lazy regime", "feature learning", "ntk", "grokking", "slingshot")
    reasons = (
        Reason(ReasonKind.TOPIC, "Learning dynamics", terms),
        Reason("similar", "Close to Learning dynamics"),  # type: ignore[arg-type]
        Reason("example", "Like 2310.06110", ("Grokking as a first-order phase transition",)),  # type: ignore[arg-type]
    )
    d = Digest(SUBSCRIBER, DAY, (ScoredPaper(paper(), 1.0, reasons),))
    email = renderer.render(d)
    assert "matched <em>training dynamics, lazy regime, feature learning</em> +\u00a03 more" in (
        email.html
    )
    assert "slingshot" not in email.html
    assert '<strong class="why-label"' in email.html
    assert "Close to Learning dynamics</strong></div>" in email.html
    assert "Like 2310.06110</strong> — <em>Grokking as a first-order phase transition</em>" in (
        email.html
    )
    assert "+ Learning dynamics — matched training dynamics, lazy regime, feature" in email.text
    assert "+ Close to Learning dynamics\n" in email.text
    assert email.html == renderer.reference(d)


def test_long_words_and_urls_get_break_opportunities_in_the_html_only(renderer: Renderer) -> None:
    """Most clients ignore overflow-wrap: zero-width spaces let a long word wrap anywhere."""
    word = "Supercalifragilistic" * 4
    email = renderer.render(digest(paper(title=f"{word} title")))
    assert f"{word[:20]}\u200b{word[20:40]}" in email.html
    assert word in email.text
    assert "\u200b" not in email.text
    assert word[:29] in email.subject  # clipped inside the subject, the start kept
    assert "overflow-wrap" not in email.html


def test_urls_break_with_wbr_elements_and_hold_no_invisible_characters(renderer: Renderer) -> None:
    """A URL in a summary, a title or an abstract wraps at <wbr> elements (after its
    punctuation), never at zero-width spaces, which copying would carry and auto-linking
    clients would stop at; a summary's URL is a link to the whole address."""
    url = "https://github.com/" + "a-very-long-path-segment-" * 4 + "x"
    short = "https://github.com/a/b"
    title = f"Code at {url}"
    email = renderer.render(
        digest(
            paper(1, title=title, ai_summary=f"See {url}, and {short}."),
            paper(2, ai_summary=None, abstract=f"Our code is at {url}. It runs."),
        )
    )
    shown = url.replace("/", "/<wbr>").replace("-", "-<wbr>").replace(".com", ".<wbr>com")
    shown = shown.replace("https:/<wbr>/<wbr>", "https://<wbr>")
    assert f'<a href="{url}" style="color:#3451d1">{shown}</a>, and ' in email.html
    assert f'<a href="{short}" style="color:#3451d1">{short}</a>.' in email.html  # not long
    assert f'<a href="{url}" style="color:#3451d1">{shown}</a>. It runs.' in email.html
    assert f">Code at {shown}</a>" in email.html  # in the title's own link: not a link again
    for text in re.findall(r"https://[^\s<\"]*", email.html):
        assert "\u200b" not in text, text
    assert "</wbr>" not in email.html
    assert url in email.text
    assert email.html == renderer.reference(email.digest)


def test_optional_links_and_counts_are_left_out_when_unknown(renderer: Renderer) -> None:
    """No code or project link, upvotes or comments when upstream did not give them."""
    bare = paper(github_url=None, project_url=None, upvotes=0, num_comments=None)
    email = renderer.render(digest(bare))
    for part in (email.html, email.text):
        assert "Code" not in part
        assert "Project" not in part
        assert "▲" not in part
        assert "comment" not in part


def test_footer_says_why_which_file_and_how_to_unsubscribe(renderer: Renderer) -> None:
    """The footer names the address, how to change topics and the unsubscribe link (the
    header's link, encoded; the header's mailto when no unsubscribe URL is set)."""
    ann = Digest(dataclasses.replace(SUBSCRIBER, email="ann+papers@example.org"), DAY, ())
    email = renderer.render(ann)
    link = "https://example.org/unsubscribe?u=ann%2Bpapers@example.org"
    for part in (email.html, email.text):
        assert "because ann+papers@example.org subscribed" in part
        assert "reply to this email" in part
        assert "ada.yaml" not in part
        assert link in part
        assert "u=ann+papers" not in part
    with_url = Renderer(
        DEFAULT_TEMPLATES, preferences_url="https://git.example.org/papers/subscribers"
    ).render(digest(paper()))
    for part in (with_url.html, with_url.text):
        assert "ada.yaml" in part
        assert "https://git.example.org/papers/subscribers" in part
        assert "reply to this email" not in part
    mailto = "mailto:papers@example.org?subject=unsubscribe"
    no_link = Renderer(DEFAULT_TEMPLATES, from_address="papers@example.org").render(ann)
    assert f'<a href="{mailto}"' in no_link.html
    assert f"Unsubscribe: {mailto}" in no_link.text


def test_the_footers_mailto_is_the_bare_from_address_of_the_settings() -> None:
    """``PAPERMAIL_FROM_ADDRESS="Lab News <news@lab.example.org>"``: the footer's unsubscribe
    mailto is the bare address, as in the List-Unsubscribe header."""
    settings = load_settings(from_address="Lab News <news@lab.example.org>")
    email = Renderer.for_settings(settings).render(digest(paper()))
    mailto = "mailto:news@lab.example.org?subject=unsubscribe"
    assert f'<a href="{mailto}"' in email.html
    assert f"Unsubscribe: {mailto}" in email.text
    assert "Lab News" not in email.text.partition("Unsubscribe:")[2]


def test_the_preheader_is_the_inbox_preview_line(renderer: Renderer) -> None:
    """A hidden first block says what the subject cannot: the count and the next titles; it
    is hidden without a colour (white-on-grey text is a spam filter's low-contrast rule)."""
    html = renderer.render(digest(paper(1), paper(2))).html
    hidden = re.search(r'<div style="(display:none[^"]*)">([^<]*)</div>', html)
    assert hidden is not None
    assert "color" not in hidden.group(1)
    assert "font-size" not in hidden.group(1)
    assert hidden.group(2).startswith(
        "2 papers picked for you. Also: Scaling Laws for Neural Operators on Irregular"
    )


def test_the_preheader_never_holds_two_ellipses_in_a_row() -> None:
    """A clipped title followed by the "more papers" ellipsis gives one ellipsis, not "……"."""
    long_title = "Learning to rank papers for readers who skim their inbox in the morning"
    four = digest(paper(1), paper(2), paper(3, title=long_title), paper(4))
    line = preheader(four)
    assert "……" not in line
    assert line.endswith("Learning to rank papers for readers who skim their inbox…")
    short = preheader(digest(paper(1), paper(2, title="A"), paper(3, title="B"), paper(4)))
    assert short.endswith("Also: A; B…")


@pytest.mark.parametrize(
    ("frequency", "weekday", "when", "next_time"),
    [("daily", None, "today", "tomorrow"), ("weekly", "monday", "this week", "next Monday")],
)
def test_an_empty_email_speaks_of_the_subscribers_frequency(
    renderer: Renderer,
    frequency: Literal["daily", "weekly"],
    weekday: str | None,
    when: str,
    next_time: str,
) -> None:
    """A weekly subscriber's empty email says "this week" and "see you next Monday"."""
    subscriber = dataclasses.replace(SUBSCRIBER, frequency=frequency, weekday=weekday)
    empty = dataclasses.replace(digest(), subscriber=subscriber)
    email = renderer.render(empty)
    other = "tomorrow" if frequency == "weekly" else "next Monday"
    assert email.subject == f"Nothing matched your topics {when} · 1 Jan"
    assert f"No paper {when} matched your topics" in preheader(empty)
    for part in (email.html, " ".join(email.text.split())):
        assert f"No paper {when} matched your topics or followed authors." in part
        assert f"see you {next_time}." in part
        assert other not in part
    assert email.html == renderer.reference(empty)


def test_an_empty_digest_says_nothing_matched(renderer: Renderer) -> None:
    """send_empty subscribers get a short, friendly email."""
    email = renderer.render(digest())
    assert "Nothing matched your topics today" in email.subject
    assert "No paper today matched your topics" in email.html
    assert "No paper today matched your topics" in email.text


def test_the_text_part_reads_at_80_columns(renderer: Renderer) -> None:
    """No line is longer than 80 characters except one holding a single unbreakable URL."""
    long_title = paper(title="On the " + "Remarkably " * 15 + "Long Title")
    text = renderer.render(digest(long_title, paper(2), paper(3))).text
    for line in text.splitlines():
        if len(line) > 80:
            assert len(line.split()) <= 2, line
            assert "://" in line, line
    assert "1.  On the Remarkably" in text
    assert "    Page      https://huggingface.co/papers/2601.00001" in text
    assert "    arXiv     https://arxiv.org/abs/2601.00001" in text


def test_a_long_digest_opens_with_a_list_of_its_titles(renderer: Renderer) -> None:
    """From OVERVIEW_FROM papers on, the top lists every title; shorter digests do not."""
    long = renderer.render(digest(*(paper(n) for n in range(OVERVIEW_FROM))))
    items = re.search(r'<ol class="overview"[^>]*>(.*?)</ol>', long.html)
    assert items is not None
    assert items.group(1).count("<li") == OVERVIEW_FROM
    assert "In this email:" in long.text
    short = renderer.render(digest(*(paper(n) for n in range(OVERVIEW_FROM - 1))))
    assert 'class="overview"' not in short.html
    assert "In this email:" not in short.text


def test_tldr_prefers_the_ai_summary_else_clips_the_abstract_at_a_word() -> None:
    """HF's summary when present; else whole first sentences, or a clean cut with an ellipsis."""
    assert tldr(paper(ai_summary="Short summary.")) == "Short summary."
    sentences = paper(ai_summary=None, abstract="First sentence here. Second one. " * 20)
    assert tldr(sentences, 60) == "First sentence here. Second one. First sentence here."
    one_long = paper(ai_summary=None, abstract="word " * 200)
    clipped = tldr(one_long, 100)
    assert clipped.endswith("word…")
    assert len(clipped) <= 100


@pytest.mark.parametrize(
    "stop",
    [
        "Fig. 2",
        "Figs. 3",
        "et al. Their",
        "e.g. Transformers",
        "i.e. A",
        "Eq. 4",
        "Sec. 5",
        "Ref. 12",
        "vs. ResNet",
        "J. Smith",
        "cf. Table",
    ],
)
def test_the_abstracts_sentences_are_not_cut_at_abbreviations_or_initials(stop: str) -> None:
    """A full stop after "Fig", "et al", "e.g", "J" … does not end the sentence."""
    first = f"We build on the method shown in {stop} of the appendix, where it works well."
    abstract = f"{first} A second sentence follows here. " + "More words. " * 40
    assert tldr(paper(ai_summary=None, abstract=abstract), 100) == first
    cut = tldr(paper(ai_summary=None, abstract=abstract), len(first) - 1)
    assert cut.endswith("…")  # one sentence longer than the limit: cut at a word, never at "Fig."
    assert tldr(paper(ai_summary=None, abstract=abstract)).startswith(f"{first} A second")


def test_a_30_paper_digest_fits_under_gmails_clipping_size(renderer: Renderer) -> None:
    """Thirty realistic papers render whole, well under 102 KB of HTML."""
    email = renderer.render(digest(*(paper(n) for n in range(30))))
    assert email.trimmed is None
    assert len(email.digest.papers) == 30
    assert wire_bytes(email.html) < HTML_BUDGET < GMAIL_CLIP_BYTES


def test_the_size_guard_counts_the_html_as_it_goes_on_the_wire(renderer: Renderer) -> None:
    """``wire_bytes`` is the length of the quoted-printable HTML part the delivery stage sends,
    larger than the decoded HTML."""
    email = renderer.render(digest(*(paper(n, title="Ünïcödé = ✓ " * 9) for n in range(5))))
    encoded = html_part_on_the_wire(compose(email, from_address="p@example.org").data)
    assert wire_bytes(email.html, email.html_parts) == len(encoded)
    assert len(encoded) > len(email.html.encode())


def html_part_on_the_wire(data: bytes) -> bytes:
    """The HTML part's body in a composed message, as sent (up to the CRLF of its boundary,
    which starts with "=_": quoted-printable text never holds that)."""
    head = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: '
    start = data.index(b"quoted-printable\r\n\r\n", data.index(head)) + 20
    return data[start : data.index(b"\r\n--=_", start)]


def test_the_size_guard_counts_exactly_the_bytes_the_delivery_stage_sends() -> None:
    """A 30-paper digest from stencils: the guard's figure is the HTML part's size in the
    composed message, soft line breaks where cached pieces meet included; a budget one byte
    under it trims the digest, a budget of exactly it does not."""
    thirty = digest(*(paper(n) for n in range(30)))
    email = Renderer(DEFAULT_TEMPLATES).render(thirty)
    assert email.html_parts  # the fast path, whose pieces are encoded apart
    size = len(html_part_on_the_wire(compose(email, from_address="p@example.org").data))
    assert wire_bytes(email.html, email.html_parts) == size
    assert size > wire_bytes(email.html)  # the joins cost bytes the whole HTML would not
    assert Renderer(DEFAULT_TEMPLATES, max_html_bytes=size).render(thirty).trimmed is None
    assert Renderer(DEFAULT_TEMPLATES, max_html_bytes=size - 1).render(thirty).trimmed


def test_the_cheap_wire_size_bound_is_never_below_the_exact_size() -> None:
    """The guard skips the exact count when the bound fits: the bound must never be under."""
    r = Renderer(DEFAULT_TEMPLATES)
    texts = [r.render(d).html for d in varied_digests()]
    texts += ["=" * 500, "é" * 300 + "\n", " \n" * 200, "\r\n.\r\n", "", "✓" * 1000, "a" * 80]
    for text in texts:
        assert wire_bytes_bound(text) >= wire_bytes(text), text[:80]
    for d in varied_digests():  # from stencils: pieces encoded apart and joined
        email = r.render(d)
        parts = email.html_parts
        assert wire_bytes_bound(email.html, len(parts)) >= wire_bytes(email.html, parts)
    for text in texts:  # pieces ending in a space, cut mid-line, mid-escape
        parts = tuple(text[i : i + 300] + " " for i in range(0, len(text), 300))
        joined = "".join(parts)
        assert wire_bytes_bound(joined, len(parts)) >= wire_bytes(joined, parts), text[:80]


def test_an_oversized_digest_loses_summary_length_first(renderer: Renderer) -> None:
    """When shorter summaries are enough, every paper stays and the note says so."""
    big = digest(*(paper(n, ai_summary="A long summary sentence. " * 20) for n in range(10)))
    short = renderer.assemble(big, tldr_chars=SHORT_TLDR_CHARS)
    short_size = wire_bytes(short.html, short.html_parts)
    tight = Renderer(DEFAULT_TEMPLATES, max_html_bytes=short_size)
    email = tight.render(big)
    assert len(email.digest.papers) == 10
    assert email.trimmed is not None
    assert f"summaries shortened to {SHORT_TLDR_CHARS} characters" in email.trimmed
    assert "papers kept" not in email.trimmed
    assert len(email.html.encode()) <= short_size


def test_an_oversized_digest_then_loses_papers_and_says_how_many(renderer: Renderer) -> None:
    """A digest far over the limit keeps its best papers, under the limit, and says so."""
    email = renderer.render(digest(*(paper(n) for n in range(80))))
    kept = len(email.digest.papers)
    assert 20 < kept < 80
    assert email.digest.papers[0].paper.id == "2601.00000"
    assert wire_bytes(email.html) <= HTML_BUDGET
    assert email.trimmed is not None
    assert f"{kept} of 80 papers kept" in email.trimmed
    assert f"{80 - kept} more papers matched today but did not fit" in email.html
    assert f"{80 - kept} more papers matched today but did not fit" in email.text


def broken_templates(tmp_path: Path, name: str, old: str, new: str) -> tuple[Path, int]:
    """A copy of the shipped templates with ``old`` replaced in ``name``; the changed line."""
    copy = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES, copy)
    source = (copy / name).read_text(encoding="utf-8")
    assert old in source
    (copy / name).write_text(source.replace(old, new, 1), encoding="utf-8")
    return copy, source[: source.index(old)].count("\n") + 1


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        (
            "digest.mjml.j2",
            "{% for item in papers %}",
            "{% for item in %}",
            "Expected an expression",
        ),
        (
            "digest.mjml.j2",
            "{{ item.html_authors }}",
            "{{ item.writers }}",
            "no attribute 'writers'",
        ),
        ("digest.txt.j2", "{{ item.authors", "{{ authors_list", "'authors_list' is undefined"),
    ],
)
def test_a_broken_template_fails_at_construction_with_file_and_line(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    """Syntax and undefined-name errors both surface when the renderer is built."""
    templates, line = broken_templates(tmp_path, name, old, new)
    with pytest.raises(TemplateError) as caught:
        Renderer(templates)
    assert f"{templates / name}:{line}:" in str(caught.value)
    assert message in str(caught.value)


def test_an_mjml_error_fails_at_construction_naming_the_template(tmp_path: Path) -> None:
    """Valid Jinja that yields invalid MJML is caught when the renderer is built."""
    templates, _ = broken_templates(tmp_path, "digest.mjml.j2", "</mj-section>", "")
    with pytest.raises(TemplateError, match=r"^digest\.mjml\.j2: MJML did not compile: "):
        Renderer(templates)


def test_a_broken_template_stops_the_run_before_anything_is_sent(
    live: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`papermail run` with a syntax error: exit 1, one line naming file and line, no mail."""
    templates, line = broken_templates(
        tmp_path, "digest.mjml.j2", "{% endfor %}\n", "{% endfor %}{% endif %}\n"
    )
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", str(templates))
    assert main(["run", "--date", DAY.isoformat()], sleep=no_sleep) == 1
    # (stderr may also hold aiosmtpd's log lines; ours are the ones that start with papermail:)
    err = [line for line in capsys.readouterr().err.splitlines() if "papermail:" in line]
    assert len(err) == 1
    assert err[0].startswith(f"papermail: error: {templates / 'digest.mjml.j2'}:{line}:")
    assert live.inbox.messages == []
    assert not (tmp_path / "var" / "ledger.sqlite3").exists()


def test_a_trimmed_digest_is_reported_and_only_what_was_sent_is_recorded(
    live: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An email that must be cut is sent cut, and the run report's warnings say so."""
    padding = '<div style="display:none">{{ "x" * 30000 }}</div>'
    templates, _ = broken_templates(
        tmp_path, "digest.mjml.j2", '<div class="kicker">', padding + '<div class="kicker">'
    )
    monkeypatch.setenv("PAPERMAIL_TEMPLATES", str(templates))
    assert main(["run", "--date", DAY.isoformat(), "--only", "ada@example.org"]) == 0
    capsys.readouterr()
    (report_file,) = (tmp_path / "var" / "reports").glob("*.json")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    (warning,) = report["warnings"]
    assert warning.startswith("ada@example.org: digest trimmed")
    assert "2 of 5 papers kept" in warning
    assert report["results"][0]["papers"] == 2
    (message,) = live.inbox.for_recipient("ada@example.org")
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert len(html.get_content().encode()) <= HTML_BUDGET
    assert "3 more papers matched today" in html.get_content()


# --- the fast path (stencils) against the reference pipeline -------------------------------------

ADVERSARIAL = (
    NASTY,
    "<script>alert(1)</script> & <b>bold</b> &amp; &lt;x&gt; &#39; ' \" `",
    "{% raw %}{{ 7 * 7 }}{% endraw %} {# c #} {{ papers }} {% for x in y %}",
    r"Learning $\phi^3$ with $O(n^2)$ and $\mathcal{O}(\log n)$ \$5",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 12,
    "Ünïcödé ✓ 𝔘 — «quotes» ‹› \u00a0nbsp \u200bzwsp \u034f",  # noqa: RUF001
    "  leading and trailing  ",
    "line\nbreak\r\ncrlf\rcr\ttab",
    "pm0v1e <pm-rank-x></pm-rank-x> <!-- comment --> <![CDATA[x]]>",
    "",
)


def varied_digests() -> list[Digest]:
    """Digests of 0, 1, 5, 10 and 30 papers, every optional field on and off, hostile text."""
    out = []
    names = (None, "Ada", 'Ada <Lovelace> & "Byron" {{ x }}', "  two\n lines ")
    for size in (0, 1, 5, 10, 30):
        for variant in range(4):
            papers = []
            for n in range(size):
                nasty = ADVERSARIAL[(3 * n + 7 * variant) % len(ADVERSARIAL)]
                reasons = (
                    Reason(ReasonKind.TOPIC, nasty or "Topic", (nasty, "grokking")),
                    Reason(ReasonKind.AUTHOR, f"Author {n} {nasty}"),
                    Reason(ReasonKind.TOPIC, "No terms"),
                )[: (n + variant) % 4]
                changes: dict[str, object] = {
                    "title": nasty or f"Paper {n}",
                    "authors": tuple(f"{nasty} {j}" for j in range((n + variant) % 6)),
                    "ai_summary": None if n % 3 == 0 else f"{nasty} summary. " * (n % 5),
                    "abstract": f"{nasty}. Second sentence {n}. " * 8,
                    "upvotes": (n * 7) % 3,
                    "num_comments": (None, 0, 1, 5)[(n + variant) % 4],
                    "github_url": None if (n + variant) % 2 else 'https://github.com/a/b?x=1&y="2"',
                    "project_url": None if (n + variant) % 3 else "https://example.org/ü ber/<p>",
                }
                papers.append(ScoredPaper(paper(n, **changes), 1.0, reasons))
            subscriber = dataclasses.replace(
                SUBSCRIBER,
                name=names[variant],
                source_file=None if variant == 3 else Path(f"subscribers/{names[variant]}.yaml"),
            )
            out.append(Digest(subscriber, DAY if variant % 2 else date(2026, 2, 28), tuple(papers)))
    return out


@pytest.mark.parametrize("unsubscribe", [None, 'https://example.org/u?e={email}&list=<a b>"c"'])
def test_stencils_give_exactly_the_reference_html(unsubscribe: str | None) -> None:
    """Every varied digest, assembled from stencils, is byte for byte the plain pipeline's HTML."""
    r = Renderer(DEFAULT_TEMPLATES, unsubscribe_url=unsubscribe)
    assert r.fast
    for d in varied_digests():
        for tldr_chars, omitted in ((280, 0), (140, 1), (140, 7)):
            fast = r.assemble(d, tldr_chars=tldr_chars, omitted=omitted)
            assert fast.html == r.reference(d, tldr_chars=tldr_chars, omitted=omitted)
            assert "".join(fast.html_parts) == fast.html
            assert fast.text == r.fill(d, tldr_chars=tldr_chars, omitted=omitted).text


def test_cards_made_in_one_batch_for_many_digests_give_exactly_the_reference_html() -> None:
    """``warm`` compiles every digest's cards in one document; each email is still byte for byte
    the plain pipeline's."""
    r = Renderer(DEFAULT_TEMPLATES)
    digests = varied_digests()
    r.warm(digests)
    assert r.prepare(digests[0]) is None, "nothing left to make"
    for d in digests:
        assert r.assemble(d).html == r.reference(d)


def test_css_inlining_with_style_rules_read_once_is_premailers_own() -> None:
    """``inline_css`` reuses each style block's parsed rules across documents; the HTML is what
    premailer itself writes for each of several different documents, one after another."""
    r = Renderer(DEFAULT_TEMPLATES)
    for d in varied_digests()[:4]:
        compiled = compile_mjml(r.fill(d).mjml)
        marked = html_module._MJML_RESET.sub(r'\1 data-premailer="ignore">\2', compiled, count=1)
        own = premailer.Premailer(marked, **html_module._OPTIONS).transform(pretty_print=False)
        assert inline_css(compiled) == "<!doctype html>\n" + own


def test_stencils_keep_hostile_text_literal() -> None:
    """Markup, Jinja syntax and marker look-alikes in upstream text come out as plain text."""
    r = Renderer(DEFAULT_TEMPLATES)
    html = r.render(digest(paper(title=ADVERSARIAL[8], ai_summary=NASTY))).html
    assert "pm0v1e &lt;pm-rank-x&gt;&lt;/pm-rank-x&gt; &lt;!-- comment --&gt;" in html
    assert "Attention &lt;is&gt; all &amp; you {{ need }}" in html
    assert "<pm-" not in html


def test_a_template_the_stencils_cannot_follow_is_rendered_the_reference_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A filter on a per-email value: a warning, and every email rendered the plain way."""
    templates, _ = broken_templates(
        tmp_path, "digest.mjml.j2", "{{ subscriber.email }}", "{{ subscriber.email | upper }}"
    )
    r = Renderer(templates)
    assert not r.fast
    assert "rendering each email the slow way" in caplog.text
    email = r.render(digest(paper()))
    assert "ADA@EXAMPLE.ORG" in email.html
    assert email.html == r.reference(digest(paper()))
    assert email.html_parts == (), "no pieces to share: delivery encodes the HTML whole"


def test_cards_are_compiled_once_per_paper() -> None:
    """A second digest with the same papers compiles nothing; a new paper compiles one card."""
    r = Renderer(DEFAULT_TEMPLATES)
    first = digest(paper(1), paper(2))
    r.store(r.prepare(first))
    assert r.prepare(digest(paper(2), paper(1))) is not None  # paper 2 on top: a new variant
    r.store(r.prepare(digest(paper(2), paper(1))))
    assert r.prepare(first) is None
    assert r.prepare(digest(paper(2), paper(1))) is None
    pending = r.prepare(digest(paper(1), paper(3)))
    assert pending is not None
    assert len(pending.keys) == 1
