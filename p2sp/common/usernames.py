"""The username rule: what a name may be, how names compare, and which look alike.

A chat server shows names to people, so two names that *look* the same are
the same name as far as impersonation goes. The rule is the one XMPP servers
use plus the Unicode security checks browsers use for domain names:

* **Form** (``PRECIS``, RFC 8265): a name is enforced with the
  ``UsernameCasePreserved`` profile for display (fullwidth ``ａｌｉｃｅ``
  becomes ``alice``, text is NFC) and compared in the ``UsernameCaseMapped``
  form (also lower-cased): that form is the unique key. The protocol's
  character rule (letters of any script, digits, ``_ . -``) is applied too.
* **Scripts** (Unicode TR39, "highly restrictive"): the letters of a name
  come from one script, or from one of the combinations a language writes
  with (Latin with Han and Japanese kana, with Han and Bopomofo, with Han and
  Hangul). ``аlice`` (Cyrillic ``а``) or ``αlice`` (Greek ``α``) mixes
  scripts and is refused; ``张三``, ``山田たろう``, ``ösel`` are fine.
* **Look-alikes** (TR39 skeletons): every name has a skeleton, its letters
  replaced by one representative of their confusable class (``а`` → ``a``,
  ``l`` → ``1``, ``0`` → ``O`` ...) after case folding. A new name whose
  skeleton equals an existing one is refused. The database keeps the
  skeleton under a unique index, so two look-alikes registering at the same
  instant cannot both win.

The confusable classes and script data come from ``confusable-homoglyphs``
(Unicode's confusables.txt and Scripts.txt); the PRECIS profiles from
``precis-i18n``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import precis_i18n
from confusable_homoglyphs import categories
from confusable_homoglyphs import utils as _homoglyph_data

from p2sp.common.limits import USERNAME_MAX, USERNAME_MIN, USERNAME_PATTERN

_mapped = precis_i18n.get_profile("UsernameCaseMapped")
_preserved = precis_i18n.get_profile("UsernameCasePreserved")
_pattern = re.compile(USERNAME_PATTERN)

#: Scripts that may appear together in one name (TR39 "highly restrictive").
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
#: Characters of these "scripts" go with any script (digits, ``_``, marks).
_NEUTRAL = frozenset({"COMMON", "INHERITED"})

RULE = f"{USERNAME_MIN}-{USERNAME_MAX} letters (of one script), digits, '_', '.' or '-'"


class UsernameError(ValueError):
    """A name that breaks the rule; ``reason`` is a sentence for people."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_shape(name: str) -> None:
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise UsernameError(f"a username has {USERNAME_MIN} to {USERNAME_MAX} characters")
    if not _pattern.match(name):
        bad = next((c for c in name if not _pattern.match(c)), name[0])
        raise UsernameError(
            f"{bad!r} cannot be part of a username: use letters, digits, '_', '.' or '-'"
        )


@lru_cache(maxsize=65536)
def name_key(name: str) -> str | None:
    """The form names are compared in (unique per user); None if it can be no one's.

    Cached: every ``send`` looks its recipient up by name.
    """
    try:
        _check_shape(name)
        return _mapped.enforce(name)
    except (UsernameError, UnicodeError):
        return None


def display_form(name: str) -> str:
    """The name as stored and shown: PRECIS-enforced, case kept."""
    _check_shape(name)
    try:
        shown = _preserved.enforce(name)
    except UnicodeError as exc:
        raise UsernameError(f"this name is not allowed in a username ({_reason(exc)})") from None
    _check_shape(shown)
    return shown


def _reason(exc: UnicodeError) -> str:
    text = str(exc)
    return text.rsplit(": ", 1)[-1] if ": " in text else text


def scripts_of(name: str) -> set[str]:
    """The scripts of a name's letters (neutral characters left out)."""
    return {s for s in map(categories.alias, name) if s not in _NEUTRAL}


def check_scripts(name: str) -> None:
    """Refuse a name whose letters mix scripts the way spoofed names do."""
    found = scripts_of(name)
    if len(found) <= 1 or any(found <= mix for mix in _ALLOWED_MIXES):
        return
    listed = " and ".join(s.title() for s in sorted(found))
    raise UsernameError(
        f"the name mixes {listed} letters; names that mix scripts are refused "
        "because they can look like someone else's"
    )


def _load_classes() -> dict[str, str]:
    """Each confusable character -> the representative of its class.

    confusables.json lists, for a character, the single characters it can be
    mistaken for; classes are the connected groups of that relation and the
    representative is the lowest code point of each, so the mapping is the
    same on every machine.
    """
    data: dict[str, list[dict[str, str]]] = _homoglyph_data.load("confusables.json")
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        root = c
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(c, c) != root:
            parent[c], c = root, parent[c]
        return root

    for char, glyphs in data.items():
        if len(char) != 1:
            continue
        for glyph in glyphs:
            other = glyph["c"]
            if len(other) != 1:
                continue
            a, b = find(char), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {c: find(c) for c in parent}


_classes: dict[str, str] | None = None


def _map(text: str) -> str:
    global _classes
    if _classes is None:
        _classes = _load_classes()
    classes = _classes
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(classes.get(c, c) for c in decomposed))


def skeleton(name: str) -> str:
    """TR39-style skeleton: names with the same skeleton look alike.

    Mapped, case-folded and mapped again, so ``biII`` (capital i) and
    ``bill`` meet, as do ``Alice`` and ``аlice``.
    """
    return _map(_map(name).casefold())


def check_new_username(name: str) -> tuple[str, str, str]:
    """Everything a name must pass to be registered, but uniqueness.

    Returns ``(display, key, skeleton)``; raises ``UsernameError`` with the
    reason. The server then refuses a taken key or skeleton.
    """
    shown = display_form(name)
    check_scripts(shown)
    key = _mapped.enforce(shown)
    return shown, key, skeleton(shown)
