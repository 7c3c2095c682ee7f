"""What other people's text can do on the screen: show its characters, nothing more.

Everything that came from another person (message text, user names, group
names, notices quoting them, the server's reasons) goes through ``neutralise``
before it is put into a line: whatever its characters, it can only show them,
never start a line of its own, move the cursor, recolour the screen or pass
for a line of the client's (docs/client.md, "What other people's text can do
on your screen").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final, Literal

from p2sp.terminal.strings import EN, ZH


def field_text(value: object, default: str = "") -> str:
    """A payload field as a string (None and absent fields become ``default``).

    Raw: it goes on screen only through ``neutralise`` (``safe_name`` / ``safe_body``).
    """
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


# --- what other people's text can do on the screen ---------------------------

#: How every further line of someone else's text starts: under the sender,
#: visibly part of the message above, never at the left margin where the
#: client's own lines ("[System] ...", "alice> ") start.
CONTINUATION: Final = "  | "
#: What str.splitlines() breaks on: every one of them starts a continuation.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
#: Bidirectional embeddings, overrides and isolates: they reorder what follows
#: them on the line (a name could make "root" of "toor").
BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: Shown instead of a character that may not act (a bidi control, a C1 control).
REPLACEMENT: Final = "\ufffd"
#: Shown instead of a line break inside a name.
NEWLINE_SYMBOL: Final = "\u2424"
#: The bracketed tags of the client's own lines ("[System]", "[offline]" and
#: their Chinese forms), taken from the string tables: a group named like one is
#: shown in quotes so "[System] alice: ..." cannot pass for a system line.
RESERVED_TAGS: Final = frozenset(
    match.casefold()
    for table in (EN, ZH)
    for key, template in table.items()
    if key.startswith("message.")
    for match in re.findall(r"\[([^\]{}]+)\]", template)
)
_BRACKETS = str.maketrans({"[": "\uff3b", "]": "\uff3d"})


def _visible(ch: str) -> str:
    """One character of someone else's text as it may appear on the screen."""
    code = ord(ch)
    if ch == "\t":
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: \x1b is shown as ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code <= 0x9F or ch in BIDI_CONTROLS:
        return REPLACEMENT  # C1 controls (\x9b is a terminal's CSI) and bidi controls
    return ch


def _reserved(name: str) -> bool:
    plain = "".join(
        c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf"
    )
    return " ".join(plain.split()).casefold() in RESERVED_TAGS


def neutralise(value: object, *, kind: Literal["text", "name", "group"] = "text") -> str:
    r"""Another person's text, made safe to print inside one of our lines.

    The rule (docs/client.md, "What other people's text can do on your
    screen"), for every string that came from someone else:

    * Control characters do nothing: ESC (so ANSI escape sequences), ``\r``,
      backspace and the other C0 controls are shown as their Control Pictures
      symbol (``␛``, ``␍``, ``␈`` ...), DEL as ``␡``; a tab is a space; C1
      controls (``\x80``-``\x9f``, ``\x9b`` being a terminal's CSI) and the
      bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069)
      are shown as ``�``.
    * ``kind="text"`` (a message, a notice): a line break (``\n``, ``\r\n``,
      ``\r``, U+2028 ... everything ``str.splitlines`` breaks on) starts a
      continuation line that begins with ``CONTINUATION`` ("  | "), so every
      line after the first is visibly part of the message above it and none
      starts at the left margin like a system line, a prompt or another
      sender's line. Line breaks at the end are dropped.
    * ``kind="name"`` (a user name, or any other value shown on one line): a
      line break is shown as ``␤``.
    * ``kind="group"`` (a group name, shown as the ``[group]`` tag of its
      messages): as a name, and square brackets are shown as fullwidth
      ``［ ］``, so a name cannot close the tag it is shown in and open one of
      its own; a name that reads like one of the client's own tags
      (``System``, ``offline``, ``系统消息``, ``离线消息``: ``RESERVED_TAGS``)
      is shown in double quotes, so ``[System] alice: ...`` is never a group.

    Everything else (letters of every script, emoji, joiners) is shown as it is.
    """
    text = field_text(value)
    if kind != "text":
        shown = "".join(map(_visible, _LINE_BREAK.sub(NEWLINE_SYMBOL, text)))
        if kind == "group":
            shown = shown.translate(_BRACKETS)
            return f'"{shown}"' if _reserved(shown) else shown
        return shown
    lines = _LINE_BREAK.split(text.rstrip("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"))
    return ("\n" + CONTINUATION).join("".join(map(_visible, line)) for line in lines)


def safe_name(value: object, default: str = "") -> str:
    """A user name (or any one-line value) from the network, ready for a line."""
    return neutralise(field_text(value, default), kind="name")


def safe_group(value: object, default: str = "") -> str:
    """A group name from the network, ready for a line (``neutralise``)."""
    return neutralise(field_text(value, default), kind="group")


def safe_body(value: object) -> str:
    """Message or notice text from the network, ready for a line (``neutralise``)."""
    return neutralise(field_text(value), kind="text")
