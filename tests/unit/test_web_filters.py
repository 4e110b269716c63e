"""The pages' own Jinja filters, as plain functions."""

from __future__ import annotations

from api.web.render import linkify


def test_links_in_a_message_are_escaped_first_and_only_http() -> None:
    linked = str(linkify('<i>x</i> see https://a.org/p?q=1&r=2, (http://b.org/x) "javascript:y"'))
    assert linked == (
        "&lt;i&gt;x&lt;/i&gt; see "
        '<a href="https://a.org/p?q=1&amp;r=2" rel="nofollow noopener noreferrer">'
        "https://a.org/p?q=1&amp;r=2</a>, "
        '(<a href="http://b.org/x" rel="nofollow noopener noreferrer">http://b.org/x</a>) '
        "&#34;javascript:y&#34;"
    )
    assert str(linkify('https://a.org/"onmouseover="x')) == (
        '<a href="https://a.org/" rel="nofollow noopener noreferrer">https://a.org/</a>'
        "&#34;onmouseover=&#34;x"
    )
