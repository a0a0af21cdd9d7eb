"""Words for an open "unknown" class: a word list for synthesis, real recorded words.

A keyword model must answer "unknown" to any other word, not only to the few fillers
it was trained on. Two sources, both from Debian:

- `open_unknown_words`: English words from the ``wamerican`` word list
  (/usr/share/dict/american-english), without the keywords, without words that
  contain a keyword's spelling (``going``, ``upon``) and without words whose ending
  rhymes with a keyword (``dress``, ``night``, ``crown``: spelled endings in
  `RHYME_ENDINGS`). Spoken by the TTS engines.
- `ktuberling_clips`: about 1,900 real recorded words (.ogg) in ~25 languages from
  ``ktuberling-data`` (KDE's stamp toy; GPL-2+), used as real human "unknown" speech.
  Languages are whole units: `split_languages` puts each language group in one split,
  so a test language was never heard in training.
"""

import hashlib
import re
from pathlib import Path

from rc_keras.datasets.speech_commands_layout import KEYWORDS

__all__ = ["WORD_LIST", "KTUBERLING_SOUNDS", "RHYME_ENDINGS", "is_keyword_like",
           "open_unknown_words", "ktuberling_clips", "split_languages", "voice_id"]

WORD_LIST = "/usr/share/dict/american-english"
"""Debian ``wamerican``'s word list."""
KTUBERLING_SOUNDS = "/usr/share/ktuberling/sounds"
"""Debian ``ktuberling-data``'s recorded words: ``<language>/<theme>_<word>.ogg``."""
RHYME_ENDINGS = {
    "yes": ("es", "ess"), "no": ("o", "oe", "ow", "ough"), "go": ("o", "oe", "ow", "ough"),
    "up": ("up", "upp"), "down": ("own", "oun", "ound"), "left": ("eft",),
    "right": ("ight", "ite", "yte"), "on": ("on", "onn"), "off": ("off", "of", "ough"),
    "stop": ("op", "opp"),
}
"""Spelled endings that rhyme (or may) with each keyword: words ending so are left out."""


def is_keyword_like(word, keywords=KEYWORDS):
    """True when ``word`` is a keyword, contains one's spelling or ends in a rhyme of one."""
    word = word.lower()
    for keyword in keywords:
        if keyword in word:
            return True
        if any(word.endswith(end) for end in RHYME_ENDINGS.get(keyword, ())):
            return True
    return False


def open_unknown_words(count=400, seed=0, path=WORD_LIST, min_len=3, max_len=8,
                       exclude=()):
    """``count`` distinct non-keyword English words from the word list, drawn by ``seed``.

    Args:
        count: number of words.
        seed: the draw's seed (the same seed and list give the same words).
        path: the word list (one word a line); Debian ``wamerican`` by default.
        min_len, max_len: word lengths kept (letters a-z only, lower case).
        exclude: further words to leave out.

    Returns:
        Sorted list of words.

    Raises:
        FileNotFoundError: the list is missing (names the Debian package).
        ValueError: fewer than ``count`` words qualify.
    """
    import numpy as np  # noqa: PLC0415

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`count` must be a positive integer; received {count!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"the open unknown class needs the word list '{path}' "
                                "(Debian: apt-get install wamerican).")
    exclude = {w.lower() for w in exclude}
    pattern = re.compile(f"[a-z]{{{int(min_len)},{int(max_len)}}}")
    words = sorted({w for w in path.read_text(encoding="utf-8", errors="replace").split()
                    if pattern.fullmatch(w) and not is_keyword_like(w) and w not in exclude})
    if len(words) < count:
        raise ValueError(f"`count` must be at most {len(words)} (qualifying words in "
                         f"'{path}'); received {count}.")
    rng = np.random.default_rng([int(seed), 31])
    return sorted(words[i] for i in rng.choice(len(words), size=count, replace=False))


def _language_group(language):
    # Serbian ships four script/dialect folders of the same speakers: one group.
    return language.split("@", 1)[0]


def ktuberling_clips(sounds=KTUBERLING_SOUNDS):
    """Real recorded words: a list of (language group, word, path), sorted.

    English clips whose word is keyword-like (`is_keyword_like` on the word's last
    part, e.g. "pizzeria_onion" -> "onion") are left out, so no real clip labelled
    "unknown" could be a keyword; other languages' words are spoken in that language.

    Raises:
        FileNotFoundError: the folder is missing (names the Debian package).
    """
    sounds = Path(sounds)
    if not sounds.is_dir():
        raise FileNotFoundError(f"real unknown words need '{sounds}' "
                                "(Debian: apt-get install ktuberling-data).")
    clips = []
    for folder in sorted(p for p in sounds.iterdir() if p.is_dir()):
        group = _language_group(folder.name)
        for path in sorted(folder.glob("*.ogg")):
            word = path.stem.rsplit("_", 1)[-1].lower()
            if group == "en" and is_keyword_like(word):
                continue
            clips.append((group, word, str(path)))
    return clips


def split_languages(languages, validation_share=0.15, testing_share=0.3):
    """Assigns whole language groups to "training" / "validation" / "testing".

    Languages are ordered by the SHA-1 of their name (a fixed, data-independent order);
    the first ``testing_share`` of them go to testing, the next ``validation_share`` to
    validation, the rest to training (at least one each when there are three or more).

    Returns:
        Dict language -> split name.
    """
    groups = sorted(set(languages), key=lambda g: hashlib.sha1(g.encode()).hexdigest())
    n = len(groups)
    n_test = max(1, round(n * testing_share)) if n >= 3 else 0
    n_val = max(1, round(n * validation_share)) if n >= 3 else 0
    out = {}
    for i, group in enumerate(groups):
        out[group] = ("testing" if i < n_test else "validation" if i < n_test + n_val
                      else "training")
    return out


def voice_id(language):
    """The 8-hex "speaker hash" of a ktuberling language group in file names."""
    return hashlib.sha1(f"ktuberling:{language}".encode()).hexdigest()[:8]
