"""The terms the child-safety screen looks for: glin-profanity's English list (the general
part), Lanternpath's own list of what that misses (screen.yaml), and an operator's file of
the same form. A broken file stops start-up with a ContentError naming it.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from glin_profanity import Filter

from service.content.loader import ContentError
from service.domain.screen_rules import CATEGORIES, Lexicon

BUILT_IN = Path(__file__).parent / "screen.yaml"
GENERAL_CATEGORY = "profanity"


def general_terms() -> set[str]:
    """The English list of glin-profanity (profanity, sexual words and slurs)."""
    return Filter({"languages": ["english"]}).words


def load_lexicon(extra: Path | None = None) -> Lexicon:
    """The lists named by category: the operator's first, then Lanternpath's, then the
    general list, so that a word in more than one keeps its most specific category."""
    terms: list[tuple[str, list[str]]] = []
    allow: list[str] = []
    for path in [*([Path(extra)] if extra else []), BUILT_IN]:
        for category, listed in _read(path).items():
            if category == "allow":
                allow.extend(listed)
            else:
                terms.append((category, listed))
    terms.append((GENERAL_CATEGORY, sorted(general_terms())))
    return Lexicon(terms, allow)


def _read(path: Path) -> dict[str, list[str]]:
    name = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ContentError(name, f"cannot be read as YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContentError(name, "must map categories to lists of terms")
    for category, listed in data.items():
        if category != "allow" and category not in CATEGORIES:
            raise ContentError(name, f"unknown category; use one of {', '.join(CATEGORIES)} or allow",
                               field=str(category))
        if not isinstance(listed, list) or not all(isinstance(term, str) and term.strip() for term in listed):
            raise ContentError(name, "must be a list of non-empty terms", field=str(category))
    return data
