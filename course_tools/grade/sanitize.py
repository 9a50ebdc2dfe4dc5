"""Feedback pages without student script.

A feedback page shows what a student wrote: markdown cells and the outputs of their
code (HTML, JavaScript, SVG). A teacher opens it in the browser session that controls
the gradebook, so nothing of it may run there. :class:`SafeFeedback` is nbconvert's
``SanitizeHTML`` (bleach) with a list of tags a course's text needs, and markdown
rendered to HTML first and then cleaned, so that markdown link syntax cannot carry a
``javascript:`` URL either (bleach alone sees only the raw HTML in markdown).
"""

from __future__ import annotations

import bleach
from nbconvert.filters import markdown2html
from nbconvert.preprocessors.sanitize import SanitizeHTML
from traitlets import Bool, List, Unicode

TAGS = [
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
]
ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"], "*": ["class"]}
PROTOCOLS = ["http", "https", "mailto"]


class SafeFeedback(SanitizeHTML):
    """SanitizeHTML, enabled, with the course's tags; markdown is cleaned as HTML."""

    enabled = Bool(True).tag(config=True)
    tags = List(Unicode(), default_value=TAGS).tag(config=True)
    strip = Bool(True).tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.attributes = ATTRIBUTES

    def sanitize_html_tags(self, html_str):
        return bleach.clean(html_str, tags=self.tags, attributes=self.attributes,
                            protocols=PROTOCOLS, strip=self.strip,
                            strip_comments=self.strip_comments)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            if cell.get("attachments"):
                # no images on a feedback page; a reference to a missing attachment
                # would stop nbconvert's markdown renderer
                del cell["attachments"]
                cell.source = cell.source.replace("attachment:", "dropped-attachment:")
            # rendered here, cleaned, and kept as HTML (markdown passes it through)
            cell.source = self.sanitize_html_tags(markdown2html(cell.source))
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
