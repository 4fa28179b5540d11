"""HTML and EPUB: the main content as Markdown (headings and tables kept; navigation, footers and
boilerplate dropped) by trafilatura (extra `docs`); a small built-in extractor when it is absent
or finds no main content (a fragment, a short page)."""

from __future__ import annotations

import html as htmllib
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from indexes.readers.base import Builder, Extracted, ReadOptions, check_zip, read_plain
from polymodal.errors import UnsupportedFile

__all__ = ["read_html", "read_epub", "html_to_markdown"]


class _TextExtractor(HTMLParser):
    """The fallback: block tags become line breaks, h1-h6 `#` headings, table cells ` | `."""

    _SKIP = {"script", "style", "noscript", "template", "head", "nav", "footer"}
    _BLOCK = {"p", "div", "br", "li", "tr", "section", "article", "pre", "blockquote", "title", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK or re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(" ".join(data.split("\n")))


def _fallback(raw: str) -> str:
    parser = _TextExtractor()
    parser.feed(raw)
    parser.close()
    text = htmllib.unescape("".join(parser.parts))
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"^ ?\| ", "", text, flags=re.M)
    text = re.sub(r"^ +| +$", "", text, flags=re.M)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def html_to_markdown(raw: str, main_content: bool = True) -> str:
    """The page's main content as Markdown (`main_content=False`: all of it, e.g. a book chapter)."""
    if not main_content:
        return _fallback(raw)
    try:
        import trafilatura
    except ImportError:
        return _fallback(raw)
    try:
        text = trafilatura.extract(
            raw, output_format="markdown", include_tables=True, include_comments=False, favor_recall=True
        )
    except Exception:  # lxml/trafilatura on malformed markup: the built-in parser is lenient
        text = None
    # trafilatura drops what it judges boilerplate; on a short page that can be everything
    fallback = _fallback(raw)
    if not text or len(text) < 0.2 * len(fallback):
        return fallback
    return text.strip()


def read_html(path: Path, options: ReadOptions) -> Extracted:
    b = Builder()
    b.add(html_to_markdown(read_plain(path)))
    return b.build(markdown=True)


def read_epub(path: Path, options: ReadOptions) -> Extracted:
    """Chapters in spine order (the OPF's reading order), each as Markdown, marked `chapter`."""
    check_zip(path, "EPUB")
    try:
        import ebooklib
        from ebooklib import epub
    except ImportError:
        raise UnsupportedFile("reading .epub needs the 'docs' extra: pip install 'polymodal[docs]'") from None
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
        items = [book.get_item_with_id(idref) for idref, _ in book.spine]
        chapters = [
            i.get_content().decode("utf-8", errors="replace")
            for i in items
            if i is not None and i.get_type() == ebooklib.ITEM_DOCUMENT and not isinstance(i, epub.EpubNav)
        ]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, AttributeError, IndexError) as exc:
        raise UnsupportedFile(f"corrupt EPUB ({type(exc).__name__})") from None
    except Exception as exc:  # ebooklib raises its own EpubException and lxml errors
        raise UnsupportedFile(f"corrupt EPUB ({type(exc).__name__})") from None
    b = Builder()
    for n, chapter in enumerate(chapters, 1):
        b.mark(chapter=n)
        b.add(html_to_markdown(chapter, main_content=False))
    return b.build(markdown=True)
