"""Rebuild data/ from the King James Version of the Bible as Debian ships it (run once, by hand).

    apt-get download bible-kjv bible-kjv-text        # Debian 13, version 4.38 of both
    mkdir kjv && for f in bible-kjv*.deb; do dpkg-deb -x "$f" kjv; done
    python make_corpus.py kjv                        # writes data/{train,validation,test}.txt.gz

The text is the KJV of 1611 (public domain; its copyright, as the package's copyright file says,
"is expired"); Debian's bible-kjv-text carries it in the compressed form of Chip Chapin's Bible
Retrieval System (1989, "provided for unrestricted use"), and bible-kjv's `bible` program prints
it. Verse numbers are dropped: one verse a line, a blank line between chapters.

Chapters are dealt out in turn (every 24th to validation, the one 12 after it to test, the rest
to training), so the three texts come from the same books in the same style; each share keeps its
first chapters up to its size (so all three come from Genesis to Judges). The same input always
gives the same bytes (gzip without a time).
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

SIZES = {"train": 1_000_000, "validation": 60_000, "test": 60_000}  # characters, at most


def chapters(kjv: Path) -> list[str]:
    out = subprocess.run([str(kjv / "usr/bin/bible"), "-p", str(kjv / "usr/lib"), "Gen1:1-Rev22:21"],
                         capture_output=True, text=True, check=True).stdout
    found, verses = [], []
    for line in out.splitlines():
        if re.fullmatch(r"\S.* \d+", line) and not line.startswith(" "):  # "Genesis 1": a new chapter
            if verses:
                found.append("\n".join(verses) + "\n")
            verses = []
        elif m := re.match(r"\s+\d+ (.*)", line):  # "  3 And God said, ...": a new verse
            verses.append(m.group(1))
        elif line.strip() and verses:  # a verse wrapped onto the next line
            verses[-1] += " " + line.strip()
    if verses:
        found.append("\n".join(verses) + "\n")
    return found


def main(kjv: Path) -> None:
    split: dict[str, list[str]] = {name: [] for name in SIZES}
    for i, chapter in enumerate(chapters(kjv)):
        name = "validation" if i % 24 == 0 else "test" if i % 24 == 12 else "train"
        if sum(map(len, split[name])) + len(chapter) + 1 <= SIZES[name]:
            split[name].append(chapter)
    folder = Path(__file__).resolve().parent / "data"
    folder.mkdir(exist_ok=True)
    for name, parts in split.items():
        text = "\n".join(parts)
        (folder / f"{name}.txt.gz").write_bytes(gzip.compress(text.encode("ascii"), 9, mtime=0))
        print(f"{name}: {len(parts)} chapters, {len(text):,} characters")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
