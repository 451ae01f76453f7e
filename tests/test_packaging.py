"""An installed papermail works with no checkout around it: the wheel carries the templates, the
sample day and the example subscribers, and ``papermail demo`` runs from an empty folder.

The wheel is built from a copy of the project (so no stale ``build/`` leaks in) without build
isolation, and installed without its dependencies into a fresh virtual environment that borrows
them from the project's: offline and quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = ("pipeline", "templates", "examples", "pyproject.toml", "README.md")


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command, failing the test with its output when it fails."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _pip(*args: str | Path, cwd: Path) -> None:
    """The project's own pip, quiet."""
    _run([sys.executable, "-m", "pip", "--quiet", *args], cwd=cwd)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """papermail's wheel, built from a clean copy of the project."""
    root = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy2(source, root / name)
    out = root / "dist"
    _pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", out, root, cwd=root)
    (built,) = out.glob("papermail-*.whl")
    return built


def test_the_wheel_carries_every_module_the_templates_and_the_examples(wheel: Path) -> None:
    """Every module of the checkout is in the wheel (the package list in pyproject.toml is
    explicit), and so are the templates, the sample day and the example subscribers."""
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "pipeline").rglob("*.py")}
    assert modules - names == set(), "add the missing package to [tool.setuptools] packages"
    templates = {f"pipeline/templates/{p.name}" for p in (REPO / "templates").glob("*.j2")}
    assert templates
    assert templates <= names
    assert "pipeline/samples/daily_papers_2026-01-01.json" in names
    assert "pipeline/examples/subscribers/ada.yaml" in names


def test_the_installed_wheel_runs_the_demo_from_an_empty_folder(
    wheel: Path, tmp_path: Path
) -> None:
    """pip install of the wheel into a fresh venv; ``papermail demo`` in an empty folder writes
    the examples' emails to ./outbox with the packaged templates."""
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    purelib = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path
        ).strip()
    )
    # The dependencies come from the project's environment: a plain path entry, so its .pth
    # files (the editable install of the checkout) are not processed.
    (purelib / "project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    _pip("--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")}
    env["PATH"] = f"{fresh / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    where = _run([python, "-c", "import pipeline; print(pipeline.__file__)"], cwd=empty, env=env)
    assert Path(where.strip()).is_relative_to(purelib), "the installed copy, not the checkout"
    out = _run([fresh / "bin" / "papermail", "demo"], cwd=empty, env=env)
    assert "sent                         2" in out
    emails = sorted(p.name for p in (empty / "outbox").glob("*.eml"))
    assert [e.rpartition("-")[0] for e in emails] == [
        "2026-01-01-ada_example.org",
        "2026-01-01-grace_example.org",
    ]
    assert "Content-Type: text/html" in (empty / "outbox" / emails[0]).read_text()
