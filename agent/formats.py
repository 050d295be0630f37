"""Documents in the formats people keep them in, read by well-kept libraries: plain text and Markdown as
UTF-8, PDF by pypdf (its text layer), HTML by trafilatura (the page's main text, without navigation,
headings kept as Markdown), DOCX by python-docx (headings kept as Markdown). Each gives the document's text
and, where the file names one, its title; a file that cannot be learned raises an InputError saying why."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

from seal.errors import InputError

TEXT_SUFFIXES = ("", ".txt", ".md", ".markdown", ".text")
MIN_HTML_WORDS = 8
SUPPORTED = ".txt, .md, .pdf, .html or .docx"  # named in errors


def plain_text(raw: bytes, source: str) -> tuple[str | None, str]:
    if b"\x00" in raw:
        raise InputError(f"{source}: looks binary (contains NUL bytes); give text, Markdown, PDF, HTML or DOCX")
    try:
        return None, raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{source}: not valid UTF-8 (byte {e.start}); convert it to UTF-8 first") from e


def pdf_text(raw: bytes, source: str) -> tuple[str | None, str]:
    """The PDF's text layer, page by page (lines within a paragraph joined, words split at a line end
    rejoined); the title from its metadata."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise InputError(f"{source}: the PDF is encrypted; save a decrypted copy first "
                             "(e.g. `qpdf --decrypt in.pdf out.pdf`)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as e:
        raise InputError(f"{source}: not a readable PDF ({_first_line(e)})") from e
    text = "\n\n".join(_unwrap(page) for page in pages if page.strip())
    if not text.strip():
        raise InputError(f"{source}: the PDF has no text layer (scanned or image-only); run OCR on it first "
                         "(e.g. `ocrmypdf in.pdf out.pdf`)")
    return title, text


def _opens_without_password(reader) -> bool:
    from pypdf.errors import DependencyError, PyPdfError

    try:
        return bool(reader.decrypt(""))
    except (DependencyError, PyPdfError, NotImplementedError):  # no AES backend, an unknown scheme: it does not open
        return False


def _unwrap(page: str) -> str:
    """A page's lines as paragraphs: a short line that ends no sentence is a title, a paragraph of its own; a
    line that ends a sentence and is shorter than most ends a paragraph; other line breaks are spaces, and a
    word hyphenated across lines is rejoined."""
    lines = [line.strip() for line in page.splitlines() if line.strip()]
    if not lines:
        return ""
    width = sorted(len(line) for line in lines)[len(lines) // 2]
    paragraphs, current = [], ""
    for line in lines:
        if len(line) < 0.5 * width and not re.search(r"[.!?:;,\"”)]$", line):  # a title line: its own paragraph
            paragraphs += [current, line] if current else [line]
            current = ""
            continue
        current = current[:-1] + line if current.endswith("-") and line[:1].islower() else f"{current} {line}".strip()
        if re.search(r"[.!?:\"”)]$", line) and len(line) < 0.8 * width:
            paragraphs.append(current)
            current = ""
    return "\n\n".join([*paragraphs, current] if current else paragraphs)


def html_text(raw: bytes, source: str) -> tuple[str | None, str]:
    """The page's main text (trafilatura), headings as Markdown; its title."""
    import trafilatura

    html = raw.decode("utf-8", errors="replace")
    text = trafilatura.extract(html, output_format="markdown", include_comments=False, include_tables=True,
                               include_formatting=True)
    if not text or len(text.split()) < MIN_HTML_WORDS:  # what is left of a page of links is a word or two
        raise InputError(f"{source}: the HTML page has no main text to learn (empty, or only navigation and "
                         "scripts); save the article's page itself")
    metadata = trafilatura.extract_metadata(html)
    return (metadata.title if metadata is not None else None), text


def docx_text(raw: bytes, source: str) -> tuple[str | None, str]:
    """The document's paragraphs and tables in order, headings as Markdown; its title property."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(raw))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise InputError(f"{source}: not a readable DOCX file ({_first_line(e)})") from e
    blocks = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph) and item.text.strip():
            style = item.style.name if item.style is not None else ""
            level = 1 if style == "Title" else int(m.group(1)) if (m := re.match(r"Heading (\d)", style)) else 0
            blocks.append(("#" * level + " " if level else "") + item.text.strip())
        elif isinstance(item, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows]
            blocks.append("\n".join(r for r in rows if r.strip(" |")))
    text = "\n\n".join(b for b in blocks if b)
    if not text.strip():
        raise InputError(f"{source}: the DOCX file has no text")
    return document.core_properties.title or None, text


READERS: dict[str, Callable[[bytes, str], tuple[str | None, str]]] = {
    **dict.fromkeys(TEXT_SUFFIXES, plain_text), ".pdf": pdf_text, ".html": html_text, ".htm": html_text,
    ".docx": docx_text}


def extract(raw: bytes, source: str, suffix: str) -> tuple[str | None, str]:
    """(title, text) of a file's content, by its suffix (lower case, with the dot; '' for none)."""
    reader = READERS.get(suffix)
    if reader is None:
        raise InputError(f"{source}: {suffix} files are not supported; give {SUPPORTED}")
    return reader(raw, source)


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0]
