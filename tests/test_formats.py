"""Documents in common formats: PDF, HTML and DOCX are read as text (with their titles), folders and globs
expand to the supported files in them, and a file that cannot be learned gets one line naming it and the
reason, with nothing written. Test files are made here with fpdf2, pypdf and python-docx."""

from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from PIL import Image
from pypdf import PdfReader, PdfWriter

from agent.ingest import expand, read_document
from seal.errors import InputError
from tests.conftest import snapshot

ARTICLE = ("The Brannock Lighthouse stands on the island of Tessery. It was built in 1847 by the engineer "
           "Morwen Hale, who painted it green and white.")


def make_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def make_html(path: Path, article: str) -> Path:
    path.write_text(f"""<!doctype html><html><head><title>Brannock Lighthouse - Coast Wiki</title></head><body>
<nav><a href="/">Home</a> | <a href="/coast">Coast</a> | <a href="/login">Log in to edit this page</a></nav>
<article><h1>Brannock Lighthouse</h1><p>{article}</p><h2>Keepers</h2>
<p>Its first keeper was Idris Calloway, who kept the light burning for twenty-six years without a single night
dark, and whose logbooks are kept in the harbour museum of Tessery.</p></article>
<footer>Copyright Coast Wiki. Cookie settings. Privacy policy.</footer></body></html>""")
    return path


def test_pdf_html_and_docx_are_read_as_text_with_their_titles(tmp_path):
    pdf = read_document(str(make_pdf(tmp_path / "a.pdf", [ARTICLE, "Its first keeper was Idris Calloway."],
                                     title="Brannock")), 20_000_000)
    assert pdf.title == "Brannock" and "built in 1847 by the engineer Morwen Hale" in pdf.text
    assert pdf.text.endswith("Its first keeper was Idris Calloway.")

    html = read_document(str(make_html(tmp_path / "a.html", ARTICLE)), 20_000_000)
    assert html.title == "Brannock Lighthouse" and "Morwen Hale" in html.text
    assert "Idris Calloway" in html.text and "Keepers" in html.text
    assert not any(nav in html.text for nav in ("Log in", "Cookie", "Privacy"))

    word = docx.Document()
    word.core_properties.title = "Lighthouses"
    word.add_heading("Brannock Lighthouse", level=1)
    word.add_paragraph(ARTICLE)
    word.add_heading("Keepers", level=2)
    table = word.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Idris Calloway", "1847-1873"
    word.save(tmp_path / "a.docx")
    doc = read_document(str(tmp_path / "a.docx"), 20_000_000)
    assert doc.title == "Lighthouses"
    assert doc.text == f"# Brannock Lighthouse\n\n{ARTICLE}\n\n## Keepers\n\nIdris Calloway | 1847-1873"


def test_folders_and_globs_expand_to_the_supported_files(tmp_path):
    (tmp_path / "notes").mkdir()
    for name in ("b.md", "a.txt", "c.pdf", "skip.png", ".hidden.md"):
        (tmp_path / "notes" / name).write_text("x")
    (tmp_path / "notes" / "sub").mkdir()
    (tmp_path / "notes" / "sub" / "d.html").write_text("x")
    assert [Path(p).name for p in expand([str(tmp_path / "notes")])] == ["a.txt", "b.md", "c.pdf", "d.html"]
    assert [Path(p).name for p in expand([str(tmp_path / "notes" / "*.md")])] == ["b.md"]
    with pytest.raises(InputError, match="matches no files"):
        expand([str(tmp_path / "*.docx")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no .txt, .md"):
        expand([str(tmp_path / "empty")])


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    plain = make_pdf(tmp_path / "plain.pdf", [ARTICLE])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    writer.write(tmp_path / "encrypted.pdf")
    scan = FPDF()
    scan.add_page()
    Image.new("RGB", (300, 120), "white").save(tmp_path / "scan.png")
    scan.image(str(tmp_path / "scan.png"), x=10, y=10, w=150)
    scan.output(str(tmp_path / "scanned.pdf"))
    (tmp_path / "empty.html").write_text("<html><head><title>Nothing</title></head><body><nav>Home</nav></body></html>")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "broken.docx").write_bytes(b"not a zip file")
    make_pdf(tmp_path / "long.pdf", [ARTICLE * 4] * 60)
    return {"encrypted PDF": (tmp_path / "encrypted.pdf", "encrypted"),
            "image-only PDF": (tmp_path / "scanned.pdf", "no text layer"),
            "empty HTML page": (tmp_path / "empty.html", "no main text"),
            "unknown extension": (tmp_path / "sheet.xlsx", ".xlsx files are not supported"),
            "broken DOCX": (tmp_path / "broken.docx", "not a readable DOCX"),
            "file over the cap": (tmp_path / "long.pdf", "limit")}


@pytest.mark.parametrize("case", ["encrypted PDF", "image-only PDF", "empty HTML page", "unknown extension",
                                  "broken DOCX", "file over the cap"])
def test_a_file_that_cannot_be_learned_gets_one_line_and_changes_nothing(learned, tmp_path, case):
    path, needle = bad_files(tmp_path)[case]
    before = snapshot(learned.home)
    for command in (["ingest"], ["submit"]):
        run = learned.run("--set", "ingest.max_document_mb=0.02", *command, str(path))
        err = run.stderr.decode().strip()
        assert run.returncode == 1 and len(err.splitlines()) == 1, f"{case}: {err!r}"
        assert err.startswith(f"Error: {path}: ") and needle in err, f"{case}: {err!r}"
        assert snapshot(learned.home) == before, f"{case} changed the store"
