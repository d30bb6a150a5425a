"""Learner text in Markdown shows as typed."""

from mnist_lab.views import markdown


def test_run_names_are_shown_as_typed_in_markdown():
    assert markdown.quoted("my_net*2") == "“my\\_net\\*2”"
    assert markdown.plain("<b>[x](e.invalid)\n# h") == "\\<b\\>\\[x\\]\\(e\\.invalid\\) \\# h"
    # Plain text that GitHub-flavoured Markdown would turn into a link gets an invisible word joiner.
    joined = markdown.plain("http://a.invalid www.b.invalid c@d.invalid HTTPS://e")
    assert joined.count("\u2060") == 4 and "http\u2060\\:" in joined and "www\u2060\\." in joined
