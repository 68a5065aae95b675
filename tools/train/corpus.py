"""The King James Bible from Debian's bible-kjv package, as chapters of plain prose.

Verse references ("Ge1:1") are dropped; a chapter is one paragraph, its verses joined by spaces. Every 20th
chapter is held out for evaluation, so the held-out text is spread over the whole book.
"""
import re
import subprocess

HELD_OUT_EVERY = 20


def chapters():
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    result, current, key = [], [], None
    for line in text.splitlines():
        m = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not m:
            if current and line.strip():
                current[-1] += " " + line.strip()  # a verse wrapped over lines
            continue
        book, chapter, _, verse = m.groups()
        if (book, chapter) != key and current:
            result.append(" ".join(current))
            current = []
        key = (book, chapter)
        current.append(verse.strip())
    if current:
        result.append(" ".join(current))
    return result


def split():
    """(train chapters, held-out chapters)."""
    all_chapters = chapters()
    train = [c for i, c in enumerate(all_chapters) if i % HELD_OUT_EVERY != HELD_OUT_EVERY // 2]
    held_out = [c for i, c in enumerate(all_chapters) if i % HELD_OUT_EVERY == HELD_OUT_EVERY // 2]
    return train, held_out
