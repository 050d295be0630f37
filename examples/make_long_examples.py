"""Writes `vell_valley_gazetteer.pdf`, the long PDF example: a 31-page gazetteer of an invented valley, with
a text layer (its companion, `harbour_of_tessery.html`, is a saved article page written by hand). Every name
and fact in them is invented. Run from the repository root: python examples/make_long_examples.py (needs
fpdf2, from the test extra)."""

from __future__ import annotations

import random
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
SYLLABLES = ["ar", "bel", "cor", "dun", "esk", "fal", "gor", "hal", "ist", "kel", "lor", "mar", "nor", "oss",
             "pel", "quar", "ros", "sel", "tar", "ul", "ven", "wyn", "yar", "zel"]
FIRST = ["Mira", "Tobin", "Elsa", "Ivo", "Ruth", "Oren", "Ada", "Lew", "Nell", "Bram", "Cora", "Dov", "Edda", "Finn"]
LAST = ["Fenn", "Vael", "Marr", "Stell", "Calder", "Pike", "Quill", "Brand", "Hollis", "Thorne", "Wick", "Garrow"]
CROPS = ["barley", "hops", "flax", "apples", "oats", "pears", "rye", "plums", "turnips", "cherries", "saffron"]
CRAFTS = ["rope", "bells", "glass", "wool cloth", "clay pipes", "barrels", "lanterns", "paper", "copper pans"]
MONTHS = ["March", "April", "May", "June", "July", "August", "September", "October"]


def name(rng: random.Random) -> str:
    return "".join(rng.sample(SYLLABLES, 2)).capitalize() + rng.choice(["by", "ford", "mere", "holt", "wick", ""])


def village(rng: random.Random, place: str, river: str) -> str:
    founder = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    year, people = rng.randint(1450, 1890), rng.randint(3, 60) * 40
    crop, craft, month = rng.choice(CROPS), rng.choice(CRAFTS), rng.choice(MONTHS)
    bridge, inn = rng.randint(1, 6), f"The {rng.choice(['Grey', 'Old', 'Blue', 'Crooked', 'Silver'])} " \
                                     f"{rng.choice(['Heron', 'Anchor', 'Wheel', 'Lantern', 'Stag'])}"
    return (f"{place} lies on the {river}, {rng.randint(2, 40)} kilometres from the valley's mouth. It was founded in "
            f"{year} by {founder}, who built its first mill beside the water. Today about {people} people live "
            f"there. The fields around {place} grow {crop}, and its workshops are known for {craft}.\n\n"
            f"The river is crossed at {place} by {bridge} stone bridge{'s' if bridge > 1 else ''}. Travellers stay "
            f"at {inn}, the oldest inn of the village. Every {month} the people of {place} hold a fair where "
            f"{crop} and {craft} are sold, and the winner of the boat race on the {river} is given a wreath of reeds.")


def gazetteer(rng: random.Random) -> list[tuple[str, list[tuple[str, str]]]]:
    """Chapters (a river each) of village entries (title, text)."""
    chapters = []
    for river in ("River Vell", "River Ossary", "River Marrow", "River Tand", "River Elk"):
        places = []
        while len(places) < 14:
            place = name(rng)
            if place not in [p for p, _ in places]:
                places.append((place, village(rng, place, river)))
        chapters.append((river, places))
    return chapters


def line(pdf: FPDF, height: float, text: str) -> None:
    pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")


def write_pdf(path: Path) -> None:
    rng = random.Random(1847)
    pdf = FPDF(format=(148, 210))  # A5, in millimetres
    pdf.set_title("A Gazetteer of the Vell Valley")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    line(pdf, 10, "A Gazetteer of the Vell Valley")
    pdf.set_font("helvetica", size=12)
    line(pdf, 6.5, "The villages of the Vell Valley and its four tributaries, river by river, with their "
                         "founders, trades and fairs.")
    for river, places in gazetteer(rng):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 15)
        line(pdf, 9, f"Villages of the {river}")
        for place, text in places:
            pdf.set_font("helvetica", "B", 12)
            line(pdf, 8, place)
            pdf.set_font("helvetica", size=12)
            for paragraph in text.split("\n\n"):
                line(pdf, 6.5, paragraph)
                pdf.ln(2)
    pdf.output(str(path))


if __name__ == "__main__":
    write_pdf(HERE / "vell_valley_gazetteer.pdf")
