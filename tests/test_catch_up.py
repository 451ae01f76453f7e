"""Catch-up and weekly digests against a local Daily Papers server holding papers on several days:
the days a digest covers are gathered (and archived) when no run gathered them, a day whose source
stays down is waited for, and every paper reaches a subscriber once, best first across days."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from pipeline.cli import main
from pipeline.sources import archive
from tests.builders import live_items
from tests.conftest import PapersServer, SmtpServer, no_sleep

SATURDAY = date(2026, 11, 28)
SUNDAY = date(2026, 11, 22)  # an empty Daily Papers day
ADA = "ada@example.org"  # daily
WES = "wes@example.org"  # weekly, on Saturdays


def day(n: int) -> date:
    """The day ``n`` days after 2026-11-20."""
    return date(2026, 11, 20) + timedelta(days=n)


def paper_id(when: date, n: int) -> str:
    """The id of the ``n``-th paper listed on ``when``."""
    return f"2611.{when.day:02d}{n:03d}"


def item(paper: str, title: str, summary: str, upvotes: int) -> Any:
    """A Daily Papers item in the recorded live shape, with these id, title, abstract, upvotes."""
    entry = copy.deepcopy(live_items()[0])
    entry["paper"].update(
        id=paper, title=title, summary=summary, upvotes=upvotes, ai_summary=None, ai_keywords=[]
    )
    entry.update(title=title, summary=summary)
    return entry


def strong(when: date) -> str:
    """The day's best zebrafish paper (the word in its title and first sentence)."""
    return paper_id(when, 1)


def weak(when: date) -> str:
    """The day's weaker zebrafish paper (the word once, deep in a long abstract)."""
    return paper_id(when, 2)


def items_of(when: date, unrelated: int = 20) -> list[Any]:
    """A day's list: a strong and a weak zebrafish paper, then ``unrelated`` others."""
    filler = "We measure growth rates across many organs and tissues in several species. " * 8
    return [
        item(strong(when), f"Zebrafish fin regeneration atlas ({when})", "Zebrafish fins.", 5),
        item(weak(when), f"Organ growth across species ({when})", filler + "Zebrafish too.", 5),
        *(
            item(paper_id(when, 100 + n), f"Unrelated topic {n} ({when})", "Nothing fishy.", n)
            for n in range(unrelated)
        ),
    ]


@pytest.fixture
def week(
    live: SmtpServer, papers_server: PapersServer, env: Path, monkeypatch: pytest.MonkeyPatch
) -> PapersServer:
    """The local server holds 2026-11-21 … 2026-12-01, the Sunday empty, the 27th two pages long
    and repeating papers of earlier days; Ada (daily) and Wes (weekly, Saturdays) follow
    zebrafish."""
    papers_server.days.clear()
    for n in range(1, 12):
        papers_server.days[day(n).isoformat()] = items_of(day(n))
    papers_server.days[SUNDAY.isoformat()] = []
    papers_server.days["2026-11-27"] = items_of(date(2026, 11, 27), unrelated=130)
    papers_server.days["2026-11-25"].append(items_of(date(2026, 11, 23))[0])  # listed again
    subscribers = env / "subs"
    subscribers.mkdir()
    for email, extra in ((ADA, ""), (WES, "frequency: weekly\nweekday: saturday\n")):
        (subscribers / f"{email[:3]}.yaml").write_text(
            f"email: {email}\ntopics:\n  - name: Fish\n    keywords: [zebrafish]\n"
            f"max_papers: 30\n{extra}",
            encoding="utf-8",
        )
    monkeypatch.setenv("PAPERMAIL_SUBSCRIBERS", str(subscribers))
    return papers_server


def run(when: date, *args: str) -> int:
    """``papermail run --date when``."""
    return main(["run", "--date", when.isoformat(), *args], sleep=no_sleep)


def received(smtp: SmtpServer, email: str) -> list[list[str]]:
    """The paper ids of each message ``email`` got, in the order the text part lists them."""
    out = []
    for message in smtp.inbox.for_recipient(email):
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        out.append(re.findall(r"arXiv\s+https://arxiv\.org/abs/(\S+)", body.get_content()))
    return out


def result_of(env: Path, when: date, email: str) -> dict[str, Any]:
    """``email``'s entry in the newest run report for ``when``."""
    report = json.loads(max((env / "var" / "reports").glob(f"{when}-*.json")).read_text())
    (result,) = [r for r in report["results"] if r["email"] == email]
    assert isinstance(result, dict)
    return result


def days_asked(server: PapersServer) -> Counter[str]:
    """How many Daily Papers requests each day got."""
    return Counter(parse_qs(urlparse(r).query)["date"][0] for r in server.requests)


def isos(*days: date) -> list[str]:
    """The days as report strings."""
    return [d.isoformat() for d in days]


def test_a_daily_subscriber_gets_each_missed_days_papers_once_best_first(
    week: PapersServer, live: SmtpServer, env: Path
) -> None:
    """Runs on the 23rd, the 25th (one missed) and the 28th (two missed): every zebrafish paper
    of the 23rd … 28th reaches Ada exactly once; the 28th's digest ranks the three days
    together (every strong paper before every weak one); each day was asked for once a page."""
    assert run(day(3)) == 0  # the 23rd: Ada's first digest; Wes waits for Saturday
    assert run(day(5)) == 0
    assert result_of(env, day(5), ADA)["covers"] == isos(day(4), day(5))
    assert run(SATURDAY) == 0
    assert result_of(env, SATURDAY, ADA)["covers"] == isos(day(6), day(7), SATURDAY)
    assert result_of(env, SATURDAY, ADA)["waiting"] == []

    digests = received(live, ADA)
    assert digests[0] == [strong(day(3)), weak(day(3))]
    assert sorted(digests[1]) == sorted(
        [strong(day(4)), weak(day(4)), strong(day(5)), weak(day(5))]
    )
    last = digests[2]
    assert set(last[:3]) == {strong(day(n)) for n in (6, 7, 8)}
    assert set(last[3:]) == {weak(day(n)) for n in (6, 7, 8)}
    every = [pid for digest in digests for pid in digest]
    assert len(every) == len(set(every)) == 12, "each paper once, the repeated one too"
    asked = days_asked(week)
    assert asked["2026-11-27"] == 2, "the missed 27th was gathered with its two pages"
    assert all(asked[d.isoformat()] == 1 for d in (day(3), day(4), day(5), day(6), SATURDAY))
    for n in range(3, 9):
        stored = archive.load_day(env / "var", day(n))
        assert stored is not None
        assert stored.papers, f"{day(n)} is archived"


def test_a_weekly_subscriber_served_only_on_saturdays_gets_the_whole_week(
    week: PapersServer, live: SmtpServer, env: Path
) -> None:
    """No run all week, then Saturday: Wes's digest covers Sunday … Saturday, gathered now (the
    empty Sunday archived as an empty day), best first; Ada, new, gets Saturday only."""
    assert run(SATURDAY) == 0
    assert result_of(env, SATURDAY, WES)["covers"] == isos(*(day(n) for n in range(2, 9)))
    (digest,) = received(live, WES)
    assert set(digest[:6]) == {strong(day(n)) for n in range(3, 9)}
    assert set(digest[6:]) == {weak(day(n)) for n in range(3, 9)}
    assert received(live, ADA) == [[strong(SATURDAY), weak(SATURDAY)]]
    sunday = archive.load_day(env / "var", SUNDAY)
    assert sunday is not None
    assert sunday.papers == ()


def test_a_missed_day_whose_source_fails_is_caught_up_later_without_repeats(
    week: PapersServer, live: SmtpServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 26th stays unavailable on the 28th: Ada's digest goes out without it (exit 69, the
    report and explain say it waits for the 26th), and the 29th's digest brings the 26th's
    papers, leaving out one the 26th shares with the 27th, sent already."""
    (env / "subs" / "wes.yaml").unlink()  # Ada alone: the 26th is the first day gathered
    week.days["2026-11-26"].append(items_of(date(2026, 11, 27))[0])
    assert run(day(5)) == 0
    assert main(["fetch", "--date", SATURDAY.isoformat()], sleep=no_sleep) == 0
    week.faults = [(503, {})] * 5  # every attempt for the 26th, the first day gathered
    capsys.readouterr()
    assert run(SATURDAY) == 69
    out = capsys.readouterr().out
    assert "days not gathered yet (digests wait for them): 2026-11-26" in out
    result = result_of(env, SATURDAY, ADA)
    assert (result["status"], result["covers"]) == ("sent", isos(day(7), SATURDAY))
    assert result["waiting"] == ["2026-11-26"]
    assert archive.load_day(env / "var", day(6)) is None
    assert main(["explain", ADA, "--date", SATURDAY.isoformat()], sleep=no_sleep) == 0
    assert "  waits for 2026-11-26 (not gathered yet)" in capsys.readouterr().out

    assert run(day(9)) == 0
    assert result_of(env, day(9), ADA)["covers"] == isos(day(6), day(9))
    first, second, third = received(live, ADA)
    assert sorted(second) == sorted(
        [strong(day(7)), weak(day(7)), strong(SATURDAY), weak(SATURDAY)]
    )
    assert sorted(third) == sorted([strong(day(6)), weak(day(6)), strong(day(9)), weak(day(9))])
    every = first + second + third
    assert len(every) == len(set(every))


def test_a_rerun_of_the_same_day_gathers_nothing_again(
    week: PapersServer, live: SmtpServer, env: Path
) -> None:
    """After Saturday's run, a rerun, a dry run, explain and preview of Saturday ask the server
    for nothing: every day they cover is archived."""
    assert run(day(5)) == 0
    assert run(SATURDAY) == 0
    asked = len(week.requests)
    assert run(SATURDAY) == 0
    assert result_of(env, SATURDAY, ADA)["status"] == "already_sent"
    assert run(SATURDAY, "--dry-run") == 0
    assert main(["explain", WES, "--date", SATURDAY.isoformat()], sleep=no_sleep) == 0
    assert (
        main(["preview", "--date", SATURDAY.isoformat(), "--out", str(env / "p")], sleep=no_sleep)
        == 0
    )
    assert len(week.requests) == asked
    assert len(live.inbox.messages) == 3


def test_explain_and_preview_gather_and_plan_what_the_run_sends(
    week: PapersServer, live: SmtpServer, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before any run, explain gathers Wes's week and lists what Saturday's run then sends, in
    order, with the days it covers; preview shows the same papers."""
    assert main(["explain", WES, "--date", SATURDAY.isoformat(), "--json"], sleep=no_sleep) == 0
    explained = [p["id"] for p in json.loads(capsys.readouterr().out)]
    assert len(explained) == 12
    assert main(["explain", WES, "--date", SATURDAY.isoformat()], sleep=no_sleep) == 0
    listing = capsys.readouterr().out
    assert f"covers {', '.join(isos(*(day(n) for n in range(2, 9))))}" in listing
    asked = len(week.requests)
    assert (
        main(["preview", "--date", SATURDAY.isoformat(), "--out", str(env / "p")], sleep=no_sleep)
        == 0
    )
    assert len(week.requests) == asked, "explain archived the week"
    (previewed,) = (f.read_text("utf-8") for f in (env / "p").glob("wes*.txt"))
    assert re.findall(r"arXiv\s+https://arxiv\.org/abs/(\S+)", previewed) == explained
    assert run(SATURDAY) == 0
    assert received(live, WES) == [explained]
