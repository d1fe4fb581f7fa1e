"""The documentation's links: every relative link in the project's Markdown files points to a
file that exists and, with a #fragment, to a heading of that file (GitHub's anchors), so the
model card's table of experiments and the experiment log stay connected; and the app's page
quotes the model card's numbers."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "weights" / "README.md",
    ROOT / "checkpoints" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """GitHub's id of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(path: Path) -> str:
    """The file's text without its code blocks (no links or headings there)."""
    return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)


@cache  # one read per file, however many links point into it
def anchors(path: Path) -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.*)$", prose(path), flags=re.M)}


def test_github_anchor_matches_githubs_rule():
    assert github_anchor("Held-out results") == "held-out-results"
    assert (
        github_anchor('Adapting to one video (`model/adapt.py`, the app\'s "Adapt to this video")')
        == "adapting-to-one-video-modeladaptpy-the-apps-adapt-to-this-video"
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(prose(doc)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not ours to check offline
            continue
        path, _, fragment = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists() or (
            fragment and file.suffix == ".md" and fragment not in anchors(file)
        ):
            broken.append(target)
    assert not broken, broken


def glance(score: str) -> float:
    """The first number of the model card's "at a glance" row whose score column starts so."""
    for row in (ROOT / "weights" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith(score):
            return float(re.search(r"\d+\.\d+", cells[2]).group())
    raise AssertionError(f"no row scoring {score!r} in the model card's table")


def test_the_page_quotes_the_model_cards_numbers():
    """The app's "What to expect" (app/page_text.py MEASURED) rounds the card's measurements:
    new weights with a new card and an old page (or the other way round) fail here."""
    from app.page_text import MEASURED

    assert MEASURED["fg_ari_decoder"] == round(glance("video FG-ARI, the decoder's masks"), 2)
    assert MEASURED["fg_ari_shown"] == round(glance("video FG-ARI as the app shows it"), 2)
    assert MEASURED["depth_absrel"] == round(glance("depth AbsRel"), 3)
    assert MEASURED["fg_ari_other_renderer"] == round(glance("video FG-ARI as shown /"), 2)
    assert MEASURED["reidentified"] == round(glance("the object's own slot before"), 2)
