"""Learner text inside Markdown, shown as typed: the one escaping rule of every page."""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
LINK_LIKE = re.compile(r"(?i)(?<![a-z])(?:https?|ftp|mailto|xmpp)(?=:)|(?<![a-z])www(?=\.)|(?=@)")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#<>~$:|!&@])")
BLOCK_START = re.compile(r"^([-+=]|\d+(?=[.)]))")


def plain(text) -> str:
    """Text for st.markdown, st.caption and the like that shows as typed (a name, a value in a message).

    The marks that Markdown, HTML or Streamlit's extensions (:red[…], :material/…:, $…$) read anywhere in a
    line are backslashed, which CommonMark shows as the mark itself, and so is a list or heading mark at the
    start; runs of white space (line breaks too) become one space, so nothing starts a block of its own; an
    invisible word joiner after a URL scheme and "www" and before "@" keeps GitHub-flavoured Markdown from
    making a live link of a bare address even with its punctuation escaped. Hyphens and dots inside the text
    stay as they are.
    """
    text = LINK_LIKE.sub(lambda match: match.group(0) + WORD_JOINER, " ".join(str(text).split()))
    escaped = MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return BLOCK_START.sub(lambda match: match.group(1) + "\\" if match.group(1).isdigit() else "\\" + match.group(1),
                           escaped)


def quoted(label: str) -> str:
    """A run name inside markdown: in quotes, shown as typed (see plain)."""
    return f"“{plain(label)}”"
