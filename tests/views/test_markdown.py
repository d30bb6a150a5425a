"""Learner text in Markdown shows as typed."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_lab.views import markdown


def test_run_names_are_shown_as_typed_in_markdown():
    assert markdown.quoted("my_net*2") == "“my\\_net\\*2”"
    assert markdown.plain("<b>[x](e.invalid)\n# h") == "\\<b\\>\\[x\\]\\(e.invalid\\) \\# h"
    # Plain text that GitHub-flavoured Markdown would turn into a link gets an invisible word joiner.
    joined = markdown.plain("http://a.invalid www.b.invalid c@d.invalid HTTPS://e")
    assert joined.count("\u2060") == 4 and "http\u2060\\:" in joined and "www\u2060." in joined


@pytest.mark.parametrize("typed, escaped", [
    ("[link](http://x)", "\\[link\\]\\(http\u2060\\://x\\)"),
    ("![img](http://x/i.png)", "\\!\\[img\\]\\(http\u2060\\://x/i.png\\)"),
    ("<b>bold</b>", "\\<b\\>bold\\</b\\>"),
    (":red[x] :material/home: $x$", "\\:red\\[x\\] \\:material/home\\: \\$x\\$"),
    ("__init__ *a* `c` ~~s~~ a|b &lt;", "\\_\\_init\\_\\_ \\*a\\* \\`c\\` \\~\\~s\\~\\~ a\\|b \\&lt;"),
    ("# heading", "\\# heading"), ("- item", "\\- item"), ("1. item", "1\\. item"), ("> quote", "\\> quote"),
    ("two\nlines", "two lines"), ("seed-3layer v1.2", "seed-3layer v1.2"), ("back\\slash", "back\\\\slash"),
])
def test_only_what_markdown_would_read_is_escaped(typed, escaped):
    assert markdown.plain(typed) == escaped


def shown(typed: str) -> str:
    """The escaped text as an independent CommonMark renderer (with GitHub's strikethrough and tables) writes it
    in HTML, less the invisible word joiners."""
    markdown_it = pytest.importorskip("markdown_it")
    renderer = markdown_it.MarkdownIt("commonmark").enable(["strikethrough", "table"])
    return renderer.render(markdown.plain(typed)).replace(markdown.WORD_JOINER, "")


def rendered_text(text: str) -> str:
    """HTML of a paragraph holding exactly `text` (white space collapsed), as markdown-it writes it."""
    text = " ".join(text.split())
    for mark, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.replace(mark, entity)
    return f"<p>{text}</p>\n" if text else ""


HOSTILE = ["- item", "+ item", "1. item", "12) item", "> quote", "# heading", "***", "---", "=== x", "    code",
           "`code` *em* __strong__ ~~gone~~", "[link](http://x) ![img](x.png)", "[ref]: http://x", "<b>bold</b>",
           "<!-- hidden -->", "&lt; &amp; &#x41;", "a | b", "back\\slash\\", "two  \nlines", "seed-3layer v1.2"]


@pytest.mark.parametrize("typed", HOSTILE)
def test_escaped_text_renders_as_the_text_itself(typed):
    """A paragraph of exactly what was typed: no list, heading, code, emphasis, link, HTML or entity."""
    assert shown(typed) == rendered_text(typed)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t "), max_size=40))
def test_any_typed_ascii_renders_as_typed(typed):
    assert shown(typed) == rendered_text(typed)
