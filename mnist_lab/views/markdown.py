"""Learner text inside Markdown, shown as typed: the one escaping rule of every page."""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
LINK_LIKE = re.compile(r"(?i)(?<![a-z])(?:https?|ftp|mailto|xmpp)(?=:)|(?<![a-z])www(?=\.)|(?=@)")
MARKDOWN_SPECIAL = set("\\`*_{}[]<>()#+-.!|~$:&@")


def plain(text: str) -> str:
    """Text for st.markdown, st.caption and the like that shows as typed: every Markdown special
    (HTML's < and > too) backslashed, line breaks made spaces, and an invisible word joiner after a
    URL scheme, "www" and before "@", where GitHub-flavoured Markdown would make a live link of plain
    text even when its punctuation is escaped. So no learner text becomes markup."""
    text = LINK_LIKE.sub(lambda match: match.group(0) + WORD_JOINER, str(text))
    return "".join("\\" + char if char in MARKDOWN_SPECIAL else " " if char in "\r\n" else char for char in text)


def quoted(label: str) -> str:
    """A run name inside markdown: in quotes, shown as typed (see plain)."""
    return f"“{plain(label)}”"
