"""FACS action unit names (Ekman, Friesen & Hager, 2002), for tables and detector files."""
from __future__ import annotations

AU_NAMES = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    11: "nasolabial deepener", 12: "lip corner puller", 13: "sharp lip puller", 14: "dimpler",
    15: "lip corner depressor", 16: "lower lip depressor", 17: "chin raiser", 18: "lip pucker",
    20: "lip stretcher", 22: "lip funneler", 23: "lip tightener", 24: "lip pressor", 25: "lips part",
    26: "jaw drop", 27: "mouth stretch", 28: "lip suck", 43: "eyes closed", 45: "blink",
}


def au_name(au: int) -> str:
    """The FACS name of AU `au` ("AU n" where the table has none)."""
    return AU_NAMES.get(int(au), f"AU {int(au)}")
