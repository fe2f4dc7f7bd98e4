"""Builds the committed sample fixtures of the exemplar tasks: ``python -m tasks.fixtures [task ...]``.

Every fixture is a ``tasks/<task>/sample/`` folder with ``docs.jsonl`` in the benchmark's real hub schema
and the media it names. Nothing is downloaded: images are scikit-image's bundled photos (public domain /
CC0), speech is the LibriVox clips of Debian's ``pocketsphinx-testdata`` (the other English ASR fixtures
re-encode the committed LibriSpeech sample; the Chinese ones voice their transcripts as generated tone
hums, there being no Chinese speech offline), and videos and sounds are generated here with known content,
so every question and caption is true of its media. The output is deterministic (fixed seeds; libx264 and
LAME output are byte-identical across runs), so re-running it reproduces the committed files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

TASKS_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------------
# Writers (also used by tests that build media on the fly)


def write_video(path: Path, frames: np.ndarray, fps: int, gop: int | None = None) -> Path:
    """H.264 (yuv420p) MP4 from ``uint8 [N, H, W, 3]`` frames (H and W even). ``gop`` sets the keyframe
    interval, so that tests can exercise seeking."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
        if gop:
            stream.codec_context.gop_size = gop
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV from float samples in [-1, 1] (``[n]`` mono or ``[n, channels]``)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16")
    return path


def write_mp3(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Mono MP3 through libsndfile (LAME); byte-identical across runs, about 27 kbit/s for speech."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), rate, format="MP3", subtype="MPEG_LAYER_III",
             compression_level=0.9)
    return path


def write_aac(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Mono AAC in an MP4 container (a format soundfile cannot read; exercises the PyAV path)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts, frame.time_base = 0, Fraction(1, rate)
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, optimize=True)
    return path


def write_docs(folder: Path, rows: Iterable[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docs.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """A scikit-image bundled photo as uint8 RGB, optionally resized to ``(width, height)``."""
    import skimage.data
    from PIL import Image

    image = getattr(skimage.data, name)()
    if size is not None:
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    return image


# --------------------------------------------------------------------------------------------------
# Video-MME: moving coloured shapes with questions true of them


_W, _H, _FPS, _SECONDS = 96, 64, 8, 4
_RED, _GREEN, _BLUE, _YELLOW, _BACKGROUND = (220, 30, 30), (30, 180, 60), (40, 80, 230), (240, 220, 40), (40, 40, 40)


def _canvas() -> np.ndarray:
    return np.full((_H, _W, 3), _BACKGROUND, np.uint8)


def _square(img: np.ndarray, cx: float, cy: float, half: int, colour: tuple[int, int, int]) -> None:
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    img[max(y0, 0): y0 + 2 * half, max(x0, 0): x0 + 2 * half] = colour


def _disc(img: np.ndarray, cx: float, cy: float, r: float, colour: tuple[int, int, int]) -> None:
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = colour


def _clip(draw: Callable[[np.ndarray, float], None]) -> np.ndarray:
    frames = []
    for i in range(_FPS * _SECONDS):
        img = _canvas()
        draw(img, i / (_FPS * _SECONDS - 1))  # progress in [0, 1]
        frames.append(img)
    return np.stack(frames)


def _videomme_clips() -> dict[str, np.ndarray]:
    return {
        "shapes_red_square_left_to_right": _clip(lambda img, p: _square(img, 10 + p * (_W - 20), _H / 2, 8, _RED)),
        "shapes_three_blue_circles_bouncing": _clip(
            lambda img, p: [
                _disc(img, cx, _H / 2 + 18 * np.sin(2 * np.pi * (2 * p + k / 3)), 7, _BLUE)
                for k, cx in enumerate((18, 48, 78))
            ]
        ),
        "shapes_square_green_then_yellow": _clip(
            lambda img, p: _square(img, _W / 2, _H / 2, 12, _GREEN if p < 0.5 else _YELLOW)
        ),
    }


# (videoID, video_id, task_type, question, options, answer); options as stored on the hub: "A. ..."
_VIDEOMME_QUESTIONS = [
    ("shapes_red_square_left_to_right", "001", "Attribute Perception",
     "What colour is the square that moves across the screen?",
     ["A. Red.", "B. Green.", "C. Blue.", "D. Yellow."], "A"),
    ("shapes_red_square_left_to_right", "001", "Spatial Perception",
     "In which direction does the square move?",
     ["A. From top to bottom.", "B. From right to left.", "C. From left to right.", "D. It does not move."], "C"),
    ("shapes_three_blue_circles_bouncing", "002", "Counting Problem",
     "How many circles are visible in the video?",
     ["A. One.", "B. Two.", "C. Four.", "D. Three."], "D"),
    ("shapes_three_blue_circles_bouncing", "002", "Attribute Perception",
     "What colour are the circles?",
     ["A. Red.", "B. Blue.", "C. White.", "D. Orange."], "B"),
    ("shapes_three_blue_circles_bouncing", "002", "Action Recognition",
     "How do the circles move?",
     ["A. They bounce up and down.", "B. They spin in place.", "C. They slide to the left.", "D. They stay still."],
     "A"),
    ("shapes_square_green_then_yellow", "003", "Temporal Perception",
     "What colour is the square at the start of the video?",
     ["A. Yellow.", "B. Purple.", "C. Green.", "D. Red."], "C"),
    ("shapes_square_green_then_yellow", "003", "Temporal Reasoning",
     "How does the square change during the video?",
     ["A. It turns from green to yellow.", "B. It turns from yellow to green.", "C. It grows larger.",
      "D. It disappears."], "A"),
]


def build_videomme(out: Path) -> None:
    for video_id, frames in _videomme_clips().items():
        write_video(out / "data" / f"{video_id}.mp4", frames, _FPS)
    rows, counter = [], {}
    for video, vid, task_type, question, options, answer in _VIDEOMME_QUESTIONS:
        counter[vid] = counter.get(vid, 0) + 1
        rows.append({
            "video_id": vid, "duration": "short", "domain": "Film & Television", "sub_category": "Animation",
            "url": "", "videoID": video, "question_id": f"{vid}-{counter[vid]}", "task_type": task_type,
            "question": question, "options": options, "answer": answer,
        })
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# LibriSpeech test-clean: five real LibriVox clips from Debian pocketsphinx-testdata


_LIBRISPEECH_PROMPT = "Please recognize the speech and only output the recognized content:"


def _pocketsphinx_librivox() -> Path:
    try:
        files = subprocess.check_output(["dpkg", "-L", "pocketsphinx-testdata"], text=True).split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("needs Debian pocketsphinx-testdata: apt-get install -y pocketsphinx-testdata") from e
    return Path(next(f for f in files if f.endswith("/librivox/transcription"))).parent


def build_librispeech(out: Path) -> None:
    source = _pocketsphinx_librivox()
    rows = []
    for line in (source / "transcription").read_text().splitlines():
        text, _, utterance = line.rpartition("(")
        utterance = utterance.strip().rstrip(")")
        transcript = text.replace("<s>", "").replace("</s>", "").strip()
        (out / "audio").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / f"{utterance}.wav", out / "audio" / f"{utterance}.wav")
        # LibriSpeech transcripts are upper case without punctuation; the corpus quirk "a more a amiable" stays.
        rows.append({"audio": f"audio/{utterance}.wav", "gt": transcript.upper(), "prompt": _LIBRISPEECH_PROMPT,
                     "source": "librivox_sense_and_sensibility", "task": "asr_en"})
    write_docs(out, rows)
    # Real pocketsphinx hypotheses for these clips: a genuine ASR output to score with no model at all.
    shutil.copyfile(source / "test-lm.match", out / "test-lm.match")
    (out / "LICENSE").write_text(
        "Audio, transcripts and test-lm.match: Debian package pocketsphinx-testdata\n"
        "(usr/share/pocketsphinx/test/data/librivox), Copyright 1995-2014 Carnegie Mellon University,\n"
        "2014-2015 Alpha Cephei Inc., BSD-2-Clause. The recordings are LibriVox readings of Jane Austen's\n"
        "'Sense and Sensibility' (public domain).\n"
    )


# --------------------------------------------------------------------------------------------------
# MMBench: real photos, questions true of them, with the circular copies of the dev split


_MMBENCH_QUESTIONS = [
    # (photo, hint, question, options in canonical order, answer letter, category, l2_category)
    ("astronaut", None, "What is the person in the image wearing?",
     ["A spacesuit", "A swimsuit", "A chef's uniform", "A tuxedo"], "A",
     "attribute_recognition", "finegrained_perception (instance-level)"),
    ("coffee", None, "Which drink is shown in the image?",
     ["Orange juice", "Coffee", "Milk", "Red wine"], "B", "object_localization", "coarse_perception"),
    ("chelsea", "The photo was taken indoors.", "Which animal is in the image?",
     ["A dog", "A horse", "A cat", "A parrot"], "C", "image_topic", "coarse_perception"),
    ("rocket", None, "Is the rocket in the image on the ground or in flight?",
     ["In flight", "On the ground"], "B", "physical_property_reasoning", "attribute_reasoning"),
]


def build_mmbench(out: Path) -> None:
    """Rows as in ``lmms-lab/MMBench`` (en, dev): a question with k options appears k times, its options
    rotated by one each time; copy ``c`` has ``index = c * 1_000_000 + original index``."""
    rows = []
    for index, (name, hint, question, options, answer, category, l2) in enumerate(_MMBENCH_QUESTIONS):
        image = f"images/{name}.jpg"
        _save_jpeg(out / image, photo(name, _fit(photo(name).shape, 224)))
        correct = options["ABCD".index(answer)]
        for shift in range(len(options)):
            rotated = options[shift:] + options[:shift]
            row = {"index": shift * 1_000_000 + index, "question": question, "hint": hint,
                   "answer": "ABCD"[rotated.index(correct)]}
            row.update({letter: (rotated[i] if i < len(rotated) else None) for i, letter in enumerate("ABCD")})
            row.update({"category": category, "image": image, "source": "skimage", "L2-category": l2,
                        "comment": None, "split": "dev"})
            rows.append(row)
    write_docs(out, rows)


def _fit(shape: Sequence[int], longest: int) -> tuple[int, int]:
    h, w = shape[:2]
    scale = longest / max(h, w)
    return int(round(w * scale)), int(round(h * scale))


def _save_jpeg(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=85)


# --------------------------------------------------------------------------------------------------
# GPQA Diamond: our own questions in the real column layout (never GPQA's questions)


_GPQA_QUESTIONS = [
    ("Physics", "Quantum Mechanics",
     "A particle in a one-dimensional infinite square well of width L is in its ground state. The width is "
     "suddenly doubled to 2L. What is the probability of finding the particle in the ground state of the new well?",
     "32/(9 pi^2)", "1/2", "1/4", "8/(3 pi^2)",
     "The overlap of sqrt(2/L) sin(pi x/L) on [0, L] with sqrt(1/L) sin(pi x/2L) is 4 sqrt(2)/(3 pi); squared, "
     "32/(9 pi^2)."),
    ("Chemistry", "Organic Chemistry",
     "How many stereoisomers does 2,3-dibromobutane have?",
     "3", "4", "2", "6",
     "Two stereocentres give at most four, but the (2R,3S) and (2S,3R) forms are one meso compound."),
    ("Biology", "Genetics",
     "In a species, the allele a is recessive and lethal before birth when homozygous. Two heterozygous (Aa) "
     "parents have many offspring. What fraction of the offspring born alive carry the allele a?",
     "2/3", "1/2", "1/4", "3/4",
     "Zygotes are 1 AA : 2 Aa : 1 aa; the aa quarter dies, so 2 of the 3 surviving quarters are carriers."),
    ("Physics", "Relativistic Mechanics",
     "A particle of rest mass m moves at speed 0.6c. What is its kinetic energy?",
     "0.25 m c^2", "0.18 m c^2", "0.36 m c^2", "1.25 m c^2",
     "gamma = 1/sqrt(1 - 0.36) = 1.25, so the kinetic energy is (gamma - 1) m c^2 = 0.25 m c^2."),
]


def build_gpqa(out: Path) -> None:
    rows = []
    for i, (domain, subdomain, question, correct, wrong1, wrong2, wrong3, explanation) in enumerate(_GPQA_QUESTIONS):
        rows.append({
            "Question": question, "Correct Answer": correct, "Incorrect Answer 1": wrong1,
            "Incorrect Answer 2": wrong2, "Incorrect Answer 3": wrong3, "Explanation": explanation,
            "Record ID": f"recFixture{i + 1:04d}", "High-level domain": domain, "Subdomain": subdomain,
        })
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# Clotho v2 captioning: generated sounds with five human-style captions each


_CLOTHO_RATE, _CLOTHO_SECONDS = 16_000, 3.0


def _clotho_sounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(_CLOTHO_RATE * _CLOTHO_SECONDS)) / _CLOTHO_RATE
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms ramps: no clicks
    bursts = np.zeros_like(t)
    for start in (0.3, 1.2, 2.1):
        on = (t >= start) & (t < start + 0.4)
        bursts[on] = rng.normal(0, 0.25, on.sum())
    alternating = np.where((t * 4).astype(int) % 2 == 0, np.sin(2 * np.pi * 880 * t), np.sin(2 * np.pi * 660 * t))
    return {
        "steady_beep.wav": 0.4 * np.sin(2 * np.pi * 440 * t) * fade,
        "static_bursts.wav": bursts,
        "rising_whistle.wav": 0.4 * np.sin(2 * np.pi * (200 * t + 0.5 * (1800 - 200) / _CLOTHO_SECONDS * t**2)) * fade,
        "two_tone_alarm.wav": 0.4 * alternating * fade,
    }


_CLOTHO_CAPTIONS = {
    "steady_beep.wav": [
        "A single steady beep sounds without changing pitch.",
        "A constant electronic tone plays for a few seconds.",
        "An unchanging high beep continues from start to end.",
        "A machine emits one long continuous beep.",
        "A steady tone hums at the same pitch the whole time.",
    ],
    "static_bursts.wav": [
        "Three short bursts of static hiss are separated by silence.",
        "Loud white noise starts and stops three times.",
        "A hissing sound comes in short bursts with quiet gaps between them.",
        "Static crackles briefly three times in a row.",
        "Bursts of rushing noise are broken up by moments of silence.",
    ],
    "rising_whistle.wav": [
        "A whistle rises steadily from a low pitch to a high pitch.",
        "A tone sweeps upward in pitch over a few seconds.",
        "A sound slides smoothly from low to high.",
        "An electronic whistle climbs higher and higher.",
        "The pitch of a single tone keeps rising until it stops.",
    ],
    "two_tone_alarm.wav": [
        "An alarm alternates quickly between two pitches.",
        "A siren-like beep switches back and forth between a high and a low tone.",
        "Two electronic tones take turns in a fast repeating pattern.",
        "A warning signal toggles between two notes over and over.",
        "A high tone and a slightly lower tone alternate like an alarm.",
    ],
}


def build_clotho(out: Path) -> None:
    """Rows as in Clotho v2.1's ``clotho_captions_evaluation.csv``: ``file_name, caption_1 .. caption_5``."""
    rows = []
    for file_name, samples in _clotho_sounds().items():
        write_wav(out / "audio" / file_name, samples, _CLOTHO_RATE)
        rows.append({"file_name": file_name, **{f"caption_{i + 1}": c for i, c in enumerate(_CLOTHO_CAPTIONS[file_name])}})
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# The other English ASR sets: the committed LibriVox clips above, re-encoded and restyled to each corpus'
# columns and transcript conventions (no other real English speech is available offline)


_LIBRISPEECH_SAMPLE = TASKS_DIR / "librispeech_test_clean" / "sample"


def _librivox(utterance: str) -> tuple[np.ndarray, str]:
    """(16 kHz samples, upper-case LibriSpeech transcript) of one committed clip, e.g. ``"0880"``."""
    import soundfile as sf

    name = f"sense_and_sensibility_01_austen_64kb-{utterance}"
    rows = {Path(r["audio"]).stem: r["gt"] for r in map(json.loads, open(_LIBRISPEECH_SAMPLE / "docs.jsonl"))}
    samples, rate = sf.read(str(_LIBRISPEECH_SAMPLE / "audio" / f"{name}.wav"), dtype="float32")
    assert rate == 16_000
    return samples, rows[name]


def _librivox_licence(out: Path) -> None:
    (out / "LICENSE").write_text(
        "Audio: re-encoded from tasks/librispeech_test_clean/sample (Debian pocketsphinx-testdata, BSD-2-Clause;\n"
        "LibriVox readings of Jane Austen's 'Sense and Sensibility', public domain). Rows and styling: ours.\n"
    )


def _faster(samples: np.ndarray, factor: float) -> np.ndarray:
    """Played ``factor`` times faster (higher and quicker): a second 'speaker' reading the same sentence."""
    n = int(round(len(samples) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(samples)), samples).astype(np.float32)


# Raw (cased, punctuated) forms of the clips' sentences, as a corpus with punctuation would print them.
_RAW = {
    "0870": "And Mr. John Dashwood had then leisure to consider how much there might be prudently in his power "
            "to do for them.",
    "0880": "He was not an ill-disposed young man,",
    "0890": "unless to be rather cold-hearted and rather selfish is to be ill-disposed;",
    "0920": "Had he married a more a amiable woman, he might have been made still more respectable than he was;",
    "0930": "he might even have been made amiable himself.",
}


def _plain(transcript: str) -> str:
    return transcript.lower()


def build_librispeech_long(out: Path) -> None:
    """Rows as in ``lmms-lab/Librispeech-concat`` (``audio``, ``transcript``): consecutive utterances joined
    end to end. One recording is longer than the model's 30 s window (it becomes two chunks), one is not.
    MP3 keeps the ~37 s recording near 120 KB."""
    rows = []
    for name, utterances in (("austen_01_concat_a", ["0870", "0880", "0890", "0920", "0930", "0890", "0870"]),
                             ("austen_01_concat_b", ["0880", "0930", "0920"])):
        clips = [_librivox(u) for u in utterances]
        write_mp3(out / "audio" / f"{name}.mp3", np.concatenate([c for c, _ in clips]), 16_000)
        rows.append({"audio": f"audio/{name}.mp3", "transcript": " ".join(t for _, t in clips)})
    write_docs(out, rows)
    _librivox_licence(out)


def build_fleurs_en(out: Path) -> None:
    """Rows as in ``lmms-lab/fleurs`` (google/fleurs columns). FLEURS has several speakers per sentence, so
    ``id`` repeats: here a second, faster 'speaker' reads sentence 1. ``transcription`` is the lower-cased,
    unpunctuated form; ``raw_transcription`` keeps case and punctuation."""
    rows = []
    for index, (sentence, utterance, speed, gender) in enumerate(
            [(1, "0880", 1.0, 1), (1, "0880", 1.12, 0), (2, "0930", 1.0, 1)]):
        samples, transcript = _librivox(utterance)
        samples = _faster(samples, speed) if speed != 1.0 else samples
        name = f"fleurs_en_{sentence:03d}_{index}.wav"
        write_wav(out / "audio" / name, samples, 16_000)
        rows.append({"id": sentence, "num_samples": len(samples), "path": name, "audio": f"audio/{name}",
                     "transcription": _plain(transcript), "raw_transcription": _RAW[utterance],
                     "gender": gender, "lang_id": 19, "language": "English", "lang_group_id": 0})
    write_docs(out, rows)
    _librivox_licence(out)


def build_mls_en(out: Path) -> None:
    """Rows as in ``parler-tts/mls_eng`` (test): lower-case transcripts without punctuation, FLAC audio
    named by the MLS utterance id ``<speaker>_<book>_<segment>``."""
    rows, begin = [], 0.0
    for segment, utterance in enumerate(["0890", "0930"]):
        samples, transcript = _librivox(utterance)
        name = f"10001_2001_{segment:06d}"
        write_wav(out / "audio" / f"{name}.flac", samples, 16_000)
        duration = len(samples) / 16_000
        rows.append({"audio": f"audio/{name}.flac", "original_path": f"{name}.flac", "begin_time": begin,
                     "end_time": begin + duration, "transcript": _plain(transcript), "audio_duration": duration,
                     "speaker_id": "10001", "book_id": "2001"})
        begin += duration
    write_docs(out, rows)
    _librivox_licence(out)


def build_cv15_en(out: Path) -> None:
    """Rows as in ``lmms-lab/common_voice_15`` (en, test), the lmms-lab ASR layout (``audio, gt, prompt,
    source, task``); Common Voice sentences keep case and punctuation ("Mr."), clips are MP3."""
    rows = []
    for i, utterance in enumerate(["0870", "0920", "0930"]):
        samples, _ = _librivox(utterance)
        name = f"common_voice_en_{100 + i}.mp3"
        write_mp3(out / "audio" / name, samples, 16_000)
        sentence = _RAW[utterance].rstrip(",;.") + "."
        rows.append({"audio": f"audio/{name}", "gt": sentence, "prompt": _LIBRISPEECH_PROMPT,
                     "source": "common_voice_15_en", "task": "asr_en"})
    write_docs(out, rows)
    _librivox_licence(out)


def build_voxpopuli_en(out: Path) -> None:
    """Rows as in ``facebook/voxpopuli`` (en, test): ``normalized_text`` is the reference; ``raw_text`` is
    empty for some real rows, as it is here for the second."""
    rows = []
    for i, (utterance, raw) in enumerate([("0880", True), ("0930", False)]):
        samples, transcript = _librivox(utterance)
        audio_id = f"20180101-0900-PLENARY-{i + 1}-en_20180101-09:00:0{i}_{i}"
        write_wav(out / "audio" / f"{audio_id}.wav", samples, 16_000)
        rows.append({"audio_id": audio_id, "language": 0, "audio": f"audio/{audio_id}.wav",
                     "raw_text": _RAW[utterance] if raw else "", "normalized_text": _plain(transcript),
                     "gender": "male", "speaker_id": "9999", "is_gold_transcript": True, "accent": "None"})
    write_docs(out, rows)
    _librivox_licence(out)


# --------------------------------------------------------------------------------------------------
# Chinese ASR sets. No Chinese speech exists offline, so each transcript is voiced as a "tone hum": one
# harmonic syllable per spoken syllable, its pitch following the syllable's Mandarin tone. It is not
# speech (no ASR model will read it); it keeps the rows' media real files of the right length and lets a
# test check that the audio has one syllable per character of the normalised transcript.


_HUM_RATE, _SYLLABLE_S, _NEUTRAL_S, _GAP_S, _EDGE_S = 16_000, 0.20, 0.12, 0.06, 0.15
_TONE_HZ = {1: (230, 230), 2: (165, 235), 3: (170, 130), 4: (245, 140), 0: (185, 175)}  # start, end pitch


def tone_hum(tones: str) -> np.ndarray:
    """Syllables for a string of tone digits (``0`` = neutral tone), separated by short silences."""
    parts = [np.zeros(int(_EDGE_S * _HUM_RATE))]
    for tone in map(int, tones):
        seconds = _NEUTRAL_S if tone == 0 else _SYLLABLE_S
        t = np.arange(int(seconds * _HUM_RATE)) / _HUM_RATE
        start, end = _TONE_HZ[tone]
        f0 = start + (end - start) * t / seconds
        if tone == 3:  # dipping: down to the low point at 60 %, then back up
            f0 = np.where(t < 0.6 * seconds, 170 - 40 * t / (0.6 * seconds), 130 + 70 * (t / seconds - 0.6) / 0.4)
        phase = 2 * np.pi * np.cumsum(f0) / _HUM_RATE
        envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
        parts.append(0.3 * envelope * sum(np.sin(k * phase) / k for k in range(1, 7)))
        parts.append(np.zeros(int(_GAP_S * _HUM_RATE)))
    parts.append(np.zeros(int(_EDGE_S * _HUM_RATE)))
    return np.concatenate(parts).astype(np.float32)


# (utterance id, transcript as the corpus writes it, tone digits of the spoken syllables). Our sentences.
_AISHELL1 = [  # aishell_transcript_v0.8.txt: word-segmented with spaces, no punctuation, numbers in characters
    ("BAC009S0901W0001", "今天 的 天气 很 好", "1101433"),
    ("BAC009S0901W0002", "我们 明天 去 北京", "3021431"),
    ("BAC009S0902W0001", "他 买 了 三 本 书", "130131"),
]
_AISHELL2_IOS = [  # iOS/test/trans.txt: no spaces, no punctuation
    ("IT0011W0001", "打开客厅的灯", "314101"),
    ("IT0011W0002", "播放一首音乐", "144314"),
    ("IT0012W0001", "明天早上八点叫我", "21341343"),
]
_AISHELL2_ANDROID = [
    ("AT0011W0001", "关闭卧室的空调", "1444012"),
    ("AT0011W0002", "导航到最近的加油站", "324440124"),
    ("AT0012W0001", "把音量调到二十", "3142442"),
]
_FLEURS_ZH = [  # raw_transcription keeps punctuation and Arabic numerals; transcription drops the punctuation
    (1, "这座桥建于1990年。", "4424213322"),
    (2, "春天来了，花都开了。", "11201110"),
    (3, "他每天跑步5公里。", "13134313"),
]
_CV15_ZH = [  # Common Voice sentences keep full-width punctuation
    ("common_voice_zh-CN_101", "我喜欢喝茶。", "33112"),
    ("common_voice_zh-CN_102", "请问，火车站在哪里？", "34314433"),
    ("common_voice_zh-CN_103", "这本书非常有意思！", "43112340"),
]


def _aishell(out: Path, rows: Sequence[tuple[str, str, str]], folder: Callable[[str], str]) -> None:
    docs = []
    for utt, text, tones in rows:
        audio = f"{folder(utt)}/{utt}.wav"
        write_wav(out / audio, tone_hum(tones), _HUM_RATE)
        docs.append({"id": utt, "audio": audio, "text": text})
    write_docs(out, docs)


def build_aishell1(out: Path) -> None:
    """Rows join the release's ``transcript/aishell_transcript_v0.8.txt`` to ``wav/test/<speaker>/<id>.wav``."""
    _aishell(out, _AISHELL1, lambda utt: f"wav/test/{utt[6:11]}")


def build_aishell2_ios(out: Path) -> None:
    """Rows join the AISHELL-2 test set's ``iOS/test/trans.txt`` to ``iOS/test/wav/<speaker>/<id>.wav``."""
    _aishell(out, _AISHELL2_IOS, lambda utt: f"iOS/test/wav/{utt[1:6]}")


def build_aishell2_android(out: Path) -> None:
    _aishell(out, _AISHELL2_ANDROID, lambda utt: f"Android/test/wav/{utt[1:6]}")


def build_fleurs_zh(out: Path) -> None:
    import unicodedata

    rows = []
    for index, (sentence, raw, tones) in enumerate(_FLEURS_ZH):
        samples = tone_hum(tones)
        name = f"fleurs_zh_{sentence:03d}_{index}.wav"
        write_wav(out / "audio" / name, samples, _HUM_RATE)
        plain = "".join(c for c in raw if not unicodedata.category(c).startswith("P"))
        rows.append({"id": sentence, "num_samples": len(samples), "path": name, "audio": f"audio/{name}",
                     "transcription": plain, "raw_transcription": raw, "gender": 1, "lang_id": 13,
                     "language": "Mandarin Chinese", "lang_group_id": 6})
    write_docs(out, rows)


def build_cv15_zh(out: Path) -> None:
    rows = []
    for name, sentence, tones in _CV15_ZH:
        write_mp3(out / "audio" / f"{name}.mp3", tone_hum(tones), _HUM_RATE)
        rows.append({"audio": f"audio/{name}.mp3", "gt": sentence, "prompt": _LIBRISPEECH_PROMPT,
                     "source": "common_voice_15_zh-CN", "task": "asr_zh"})
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# AudioCaps and MusicCaps: generated sounds and music with captions true of them


def _seconds(n: float, rate: int = 16_000) -> np.ndarray:
    return np.arange(int(n * rate)) / rate


def _audiocaps_sounds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    t = _seconds(2.0)
    knocks = np.zeros_like(t)
    for start in (0.2, 0.7, 1.2):  # three knocks: decaying low thumps
        on = (t >= start) & (t < start + 0.15)
        knocks[on] = 0.8 * np.exp(-(t[on] - start) * 40) * np.sin(2 * np.pi * 120 * (t[on] - start))
    hum = 0.3 * np.sin(2 * np.pi * 100 * t) + 0.15 * np.sin(2 * np.pi * 200 * t)
    falling = 0.4 * np.sin(2 * np.pi * (1500 * t - 0.5 * 1000 / 2.0 * t**2))  # 1500 Hz down to 500 Hz
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return {"knockAAAAAA": knocks + 0.01 * rng.normal(size=t.size), "humBBBBBBBB": hum * fade,
            "fallCCCCCCC": falling * fade}


_AUDIOCAPS_CAPTIONS = {
    "knockAAAAAA": ["Someone knocks on a door three times", "Three dull knocks sound in a quiet room",
                    "A person knocks three times on wood", "Knocking on a door with short pauses",
                    "Three low thuds of knocking"],
    "humBBBBBBBB": ["A machine hums steadily", "A low electrical hum continues",
                    "An engine idles with a constant drone", "A steady low buzzing noise", "Electrical equipment hums without stopping"],
    "fallCCCCCCC": ["A whistle falls in pitch", "A tone slides down from high to low",
                    "A high beep drops lower and lower", "A descending electronic tone plays",
                    "A sound glides downward in pitch"],
}


def build_audiocaps(out: Path) -> None:
    """Rows as in AudioCaps' ``test.csv`` (``audiocap_id, youtube_id, start_time, caption``): one row per
    caption, five per clip, the clips' rows interleaved as in the release; audio ``audio/<youtube_id>.wav``."""
    sounds = _audiocaps_sounds()
    for ytid, samples in sounds.items():
        write_wav(out / "audio" / f"{ytid}.wav", samples, 16_000)
    rows = [{"audiocap_id": 100_000 + 10 * k + c, "youtube_id": ytid, "start_time": 30 * (c + 1),
             "caption": _AUDIOCAPS_CAPTIONS[ytid][k]}
            for k in range(5) for c, ytid in enumerate(sounds)]
    write_docs(out, rows)


def _note(freq: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    t = _seconds(seconds, rate)
    return np.exp(-3 * t) * sum(np.sin(2 * np.pi * k * freq * t) / k**1.5 for k in range(1, 5))


def _musiccaps_clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    arpeggio = np.concatenate([_note(f, 0.25) for f in (261.6, 329.6, 392.0, 523.3) * 3])  # C major, 3 s
    t = _seconds(3.0)
    drums = np.zeros_like(t)
    for beat in np.arange(0, 3.0, 0.5):  # 120 bpm: a kick on every beat, a noise snare on the off-beat
        on = (t >= beat) & (t < beat + 0.12)
        drums[on] += 0.8 * np.exp(-(t[on] - beat) * 30) * np.sin(2 * np.pi * 60 * (t[on] - beat))
        off = (t >= beat + 0.25) & (t < beat + 0.33)
        drums[off] += 0.3 * rng.normal(size=off.sum()) * np.exp(-(t[off] - beat - 0.25) * 40)
    drone = 0.25 * (np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 165 * t))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return {"mcArpeggio1": 0.4 * arpeggio, "mcDrumBeat1": drums, "mcDroneFift": drone * fade}


_MUSICCAPS = [  # ytid, aspect_list, caption, is_audioset_eval
    ("mcArpeggio1", "['solo piano', 'arpeggio', 'major key', 'slow', 'calm']",
     "This is a calm solo piano piece. The piano plays a slow rising arpeggio in a major key, repeated three "
     "times. There is no percussion and no voice."),
    ("mcDrumBeat1", "['drums', 'kick drum', 'snare', 'steady beat', 'no melody']",
     "This is a steady drum beat at a medium tempo. A kick drum plays on every beat and a snare answers on the "
     "off-beat. There is no melody, bass line or singing."),
    ("mcDroneFift", "['drone', 'low pitch', 'sustained', 'ambient', 'meditative']",
     "This is an ambient drone. A low sustained tone and its fifth hum together without changing, which "
     "feels meditative. There are no drums and no melody."),
]


def build_musiccaps(out: Path) -> None:
    """Rows as in ``google/MusicCaps`` (train split, metadata only). The last row is outside the eval subset
    (``is_audioset_eval`` false) and has no audio: the task must drop it before asking for its clip."""
    clips = _musiccaps_clips()
    rows = []
    for ytid, aspects, caption in _MUSICCAPS:
        write_wav(out / "audio" / f"{ytid}.wav", clips[ytid], 16_000)
        rows.append({"ytid": ytid, "start_s": 30, "end_s": 40, "audioset_positive_labels": "['/m/04rlf']",
                     "aspect_list": aspects, "caption": caption, "author_id": 4, "is_balanced_subset": False,
                     "is_audioset_eval": True})
    rows.append({"ytid": "mcTrainOnly1", "start_s": 0, "end_s": 10, "audioset_positive_labels": "['/m/04rlf']",
                 "aspect_list": "['guitar']", "caption": "A guitar strums chords.", "author_id": 4,
                 "is_balanced_subset": False, "is_audioset_eval": False})
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# Rain100L: real photos with synthetic rain streaks, and the clean originals as targets


def add_rain(image: np.ndarray, seed: int, streaks: int = 60, length: int = 9, slant: float = 0.35) -> np.ndarray:
    """Rain100L-style light rain: thin, bright, slanted streaks blended over the image."""
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    layer = np.zeros((h, w), np.float32)
    for _ in range(streaks):
        x, y = rng.uniform(0, w), rng.uniform(-length, h)
        for step in range(length):
            xi, yi = int(x + slant * step), int(y + step)
            if 0 <= xi < w and 0 <= yi < h:
                layer[yi, xi] = max(layer[yi, xi], rng.uniform(0.5, 0.9))
    rainy = image.astype(np.float32) + layer[..., None] * (255.0 - image.astype(np.float32))
    return np.clip(np.rint(rainy), 0, 255).astype(np.uint8)


_RAIN_CROPS = [("astronaut", (60, 140, 156, 204)), ("coffee", (150, 200, 246, 264)),
               ("chelsea", (120, 60, 216, 124)), ("rocket", (250, 120, 346, 184))]  # (x0, y0, x1, y1): 96x64


def build_rain100l(out: Path) -> None:
    rows = []
    for i, (name, (x0, y0, x1, y1)) in enumerate(_RAIN_CROPS, 1):
        clean = photo(name)[y0:y1, x0:x1]
        write_png(out / "norain" / f"norain-{i:03d}.png", clean)
        write_png(out / "rainy" / f"rain-{i:03d}.png", add_rain(clean, seed=i))
        rows.append({"id": f"{i:03d}", "rain": f"rainy/rain-{i:03d}.png", "norain": f"norain/norain-{i:03d}.png",
                     "source": f"skimage.data.{name}"})
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------


BUILDERS: dict[str, Callable[[Path], None]] = {
    "videomme": build_videomme,
    "librispeech_test_clean": build_librispeech,
    "mmbench_en_dev": build_mmbench,
    "gpqa_diamond": build_gpqa,
    "clotho_v2_caption": build_clotho,
    "rain100l_derain": build_rain100l,
    "librispeech_test_clean_long": build_librispeech_long,
    "fleurs_en": build_fleurs_en,
    "mls_en": build_mls_en,
    "cv15_en": build_cv15_en,
    "voxpopuli_en": build_voxpopuli_en,
    "aishell1_test": build_aishell1,
    "aishell2_ios": build_aishell2_ios,
    "aishell2_android": build_aishell2_android,
    "fleurs_zh": build_fleurs_zh,
    "cv15_zh": build_cv15_zh,
    "audiocaps": build_audiocaps,
    "musiccaps": build_musiccaps,
}


def main(argv: Sequence[str]) -> None:
    for name in argv or BUILDERS:
        out = TASKS_DIR / name / "sample"
        if out.exists():
            shutil.rmtree(out)
        BUILDERS[name](out)
        print(f"wrote {out.relative_to(TASKS_DIR.parent)}")


if __name__ == "__main__":
    main(sys.argv[1:])
