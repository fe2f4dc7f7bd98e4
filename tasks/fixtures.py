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


def write_video_with_audio(path: Path, frames: np.ndarray, fps: int, audio: np.ndarray, rate: int) -> Path:
    """H.264 video plus a mono AAC audio track in one MP4 (benchmarks that feed a video's own sound)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "18", "preset": "medium", "threads": "1"}
        sound = container.add_stream("aac", rate=rate)
        sound.layout = "mono"
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode(None))
        chunk = 1024
        for start in range(0, len(audio), chunk):
            piece = av.AudioFrame.from_ndarray(audio[start:start + chunk].astype(np.float32)[None, :], format="fltp",
                                               layout="mono")
            piece.sample_rate = rate
            piece.pts, piece.time_base = start, Fraction(1, rate)
            container.mux(sound.encode(piece))
        container.mux(sound.encode(None))
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


_MMBENCH_CN_QUESTIONS = [
    ("astronaut", None, "图中的人穿着什么？", ["宇航服", "泳衣", "厨师服", "燕尾服"], "A",
     "attribute_recognition", "finegrained_perception (instance-level)"),
    ("coffee", "图片拍摄于桌面上方。", "图中是哪种饮品？", ["橙汁", "咖啡", "牛奶", "红酒"], "B",
     "object_localization", "coarse_perception"),
    ("chelsea", None, "图中是哪种动物？", ["狗", "马", "猫", "鹦鹉"], "C", "image_topic", "coarse_perception"),
    ("rocket", None, "图中的火箭是在地面上还是在飞行中？", ["在飞行中", "在地面上"], "B",
     "physical_property_reasoning", "attribute_reasoning"),
]


def build_mmbench(out: Path, questions: Sequence[tuple] = tuple(_MMBENCH_QUESTIONS)) -> None:
    """Rows as in ``lmms-lab/MMBench`` (en/cn, dev): a question with k options appears k times, its options
    rotated by one each time; copy ``c`` has ``index = c * 1_000_000 + original index``."""
    rows = []
    for index, (name, hint, question, options, answer, category, l2) in enumerate(questions):
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


def build_mmbench_cn(out: Path) -> None:
    build_mmbench(out, _MMBENCH_CN_QUESTIONS)


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
# Video and omni benchmarks (VSI-Bench, WorldSense, OmniBench, MVBench, LongVideoBench, EgoSchema, TOMATO,
# Charades-STA): generated clips and sounds, rows in each hub schema, answers true of the media


_AV_RATE = 16_000


def _tone(seconds: float, freq: float, on: tuple[float, float] = (0.0, 1e9)) -> np.ndarray:
    t = np.arange(int(_AV_RATE * seconds)) / _AV_RATE
    gate = (t >= on[0]) & (t < on[1])
    return 0.4 * np.sin(2 * np.pi * freq * t) * gate


def _bursts(seconds: float, starts: Sequence[float], length: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(_AV_RATE * seconds)) / _AV_RATE
    out = np.zeros_like(t)
    for start in starts:
        on = (t >= start) & (t < start + length)
        out[on] = rng.normal(0, 0.25, on.sum())
    return out


def _layout_clip(objects: Sequence[tuple[str, float, float, tuple[int, int, int], float]], pan: float = 0.0) -> np.ndarray:
    """Objects ``(shape, x, y, colour, appears_at)`` (progress in [0, 1]) seen by a camera panning ``pan`` px."""
    def draw(img: np.ndarray, p: float) -> None:
        dx = pan * (p - 0.5)
        for shape, x, y, colour, appears in objects:
            if p >= appears:
                (_square if shape == "square" else _disc)(img, x + dx, y, 8 if shape == "square" else 7, colour)
    return _clip(draw)


# VSI-Bench. Top-down synthetic rooms: one pixel is 5 cm; facing along +x, the image's "up" is to the left.
_VSI_SCENES = {
    ("arkitscenes", "41069025"): [("square", 20, 40, _RED, 0.0), ("square", 76, 40, _GREEN, 0.0),
                                  ("disc", 48, 14, _BLUE, 0.0)],
    ("scannet", "scene0011_00"): [("square", 16, 48, _RED, 0.0), *[("disc", x, 18, _BLUE, 0.33) for x in (34, 56, 78)],
                                  ("square", 80, 48, _GREEN, 0.66)],
}
_VSI_ROWS = [
    # (dataset, scene_name, question_type, question, options, ground_truth)
    ("arkitscenes", "41069025", "object_rel_direction_easy",
     "If I am standing by the red square and facing the green square, is the blue circle to my left or to my right?",
     ["A. left", "B. right"], "A"),
    ("arkitscenes", "41069025", "object_rel_direction_hard",
     "If I am standing by the green square and facing the blue circle, is the red square to my front-left, "
     "front-right, back-left, or back-right? The directions refer to the quadrants of a Cartesian plane (if I am "
     "standing at the origin and facing along the positive y-axis).",
     ["A. front-right", "B. back-left", "C. front-left", "D. back-right"], "C"),
    ("arkitscenes", "41069025", "object_abs_distance",
     "Measuring from the closest point of each object, what is the direct distance between the red square and the "
     "green square (in meters)?", None, "2.0"),
    ("scannet", "scene0011_00", "object_counting", "How many blue circle(s) are in this room?", None, "3"),
    ("scannet", "scene0011_00", "obj_appearance_order",
     "What will be the first-time appearance order of the following categories in the video: green square, "
     "red square, blue circle?",
     ["A. red square, blue circle, green square", "B. green square, red square, blue circle",
      "C. blue circle, green square, red square", "D. red square, green square, blue circle"], "A"),
    ("scannet", "scene0011_00", "room_size_estimation",
     "What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size of the "
     "combined space.", None, "15.4"),  # 96 x 64 px = 4.8 m x 3.2 m = 15.36 m^2
]


def build_vsibench(out: Path) -> None:
    """Rows as in ``nyu-visionx/VSI-Bench`` (test); videos at ``<dataset>/<scene_name>.mp4``."""
    for (dataset, scene), objects in _VSI_SCENES.items():
        write_video(out / dataset / f"{scene}.mp4", _layout_clip(objects, pan=8.0), _FPS)
    rows = [{"id": i, "dataset": d, "scene_name": sc, "question_type": qt, "question": q, "ground_truth": gt,
             "options": opts} for i, (d, sc, qt, q, opts, gt) in enumerate(_VSI_ROWS)]
    write_docs(out, rows)


# WorldSense: videos whose own audio track carries the answer
def build_worldsense(out: Path) -> None:
    """Rows as in ``lmms-lab/worldsense`` (test): ``candidates`` stored as "A. text"; 3- and 4-option rows."""
    seconds = _SECONDS
    beep = _clip(lambda img, p: _square(img, _W / 2, _H / 2, 12, _RED) if 0.25 <= p < 0.75 else None)
    write_video_with_audio(out / "videos" / "beep_red_square.mp4", beep, _FPS, _tone(seconds, 440, (1.0, 3.0)),
                           _AV_RATE)
    starts = (0.5, 1.7, 2.9)
    flashes = _clip(lambda img, p: _disc(img, _W / 2, _H / 2, 12, (235, 235, 235))
                    if any(s <= p * seconds < s + 0.4 for s in starts) else None)
    write_video_with_audio(out / "videos" / "three_bursts.mp4", flashes, _FPS, _bursts(seconds, starts), _AV_RATE)
    common = {"task_domain": "Tech & Science", "duration": "<1min"}
    rows = [
        {"index": 0, "video_path": "videos/beep_red_square.mp4",
         "question": "What sound can be heard while the red square is on screen?",
         "candidates": ["A. A dog barking.", "B. A steady beep.", "C. Human speech.", "D. Nothing, it is silent."],
         "answer": "B", "task_type": "Audio Recognition", **common, "audio_class": ["Sound"]},
        {"index": 1, "video_path": "videos/beep_red_square.mp4", "question": "When does the beep start?",
         "candidates": ["A. When the square appears.", "B. Before the video starts.", "C. After the square disappears."],
         "answer": "A", "task_type": "Temporal Localization", **common, "audio_class": ["Sound"]},
        {"index": 2, "video_path": "videos/three_bursts.mp4", "question": "How many bursts of noise are heard?",
         "candidates": ["A. One.", "B. Two.", "C. Three.", "D. Five."], "answer": "C", "task_type": "Audio Counting",
         **common, "audio_class": ["Sound", "Noise"]},
    ]
    write_docs(out, rows)


# OmniBench: a photo and a sound; the answer is the option's text
_OMNIBENCH_ROWS = [
    ("rocket", "rising_whistle", "Sound Event", "Action and Activity",
     "A tone rises steadily in pitch. What is the object in the picture most likely about to do?",
     ["Sink into the sea", "Lift off", "Fall asleep", "Melt in the sun"], "Lift off",
     "A rocket stands on its launch pad.", "A whistle rising from low to high pitch."),
    ("coffee", "steady_beep", "Sound Event", "Object Identification & Description",
     "What is shown in the picture, and what is heard?",
     ["A cup of coffee and a steady beep", "A cup of coffee and a rising whistle", "A cat and a steady beep",
      "A rocket and bursts of static"], "A cup of coffee and a steady beep",
     "A cup of coffee on a saucer.", "A steady electronic beep."),
    ("chelsea", "static_bursts", "Sound Event", "Count & Quantity",
     "How many bursts of noise are heard while the animal in the picture looks on?",
     ["Two", "Four", "One", "Three"], "Three", "A tabby cat.", "Three short bursts of static."),
]


def build_omnibench(out: Path) -> None:
    """Rows as in ``m-a-p/OmniBench`` / ``lmms-lab/Omni_Bench_fix`` (train); image and audio as file paths."""
    sounds = _clotho_sounds()
    rows = []
    for i, (name, sound, audio_type, task_type, question, options, answer, image_c, audio_c) in enumerate(_OMNIBENCH_ROWS):
        _save_jpeg(out / "images" / f"{name}.jpg", photo(name, _fit(photo(name).shape, 128)))
        # every tone is under 2 kHz: 8 kHz keeps them and halves the files (the adapter resamples to 16 kHz)
        write_wav(out / "audio" / f"{sound}.wav", sounds[f"{sound}.wav"][::2], _CLOTHO_RATE // 2)
        rows.append({"index": i, "task type": task_type, "audio type": audio_type, "question": question,
                     "options": options, "answer": answer, "image content": image_c, "audio content": audio_c,
                     "audio": f"audio/{sound}.wav", "image": f"images/{name}.jpg"})
    write_docs(out, rows)


def _write_shapes(out: Path, names: dict[str, str]) -> None:
    """The Video-MME shape clips under new file names (``{clip: relative path}``)."""
    clips = _videomme_clips()
    for clip, relative in names.items():
        write_video(out / relative, clips[clip], _FPS)


def build_mvbench(out: Path) -> None:
    """Rows as in ``OpenGVLab/MVBench`` (one config per sub-task; columns video, question, candidates, answer),
    with the config name added as ``sub_task`` because this one file holds two sub-tasks."""
    _write_shapes(out, {"shapes_red_square_left_to_right": "clevrer/video_validation/video_10001.mp4",
                        "shapes_three_blue_circles_bouncing": "clevrer/video_validation/video_10002.mp4",
                        "shapes_square_green_then_yellow": "perception/videos/video_2001.mp4"})
    rows = [
        {"sub_task": "moving_direction", "video": "video_10001.mp4",
         "question": "In which direction does the red square move?", "candidates": ["Left", "Right", "Up"],
         "answer": "Right"},
        {"sub_task": "moving_direction", "video": "video_10002.mp4", "question": "How do the blue circles move?",
         "candidates": ["They stay still", "To the left", "Up and down", "In a circle"], "answer": "Up and down"},
        {"sub_task": "action_count", "video": "video_2001.mp4",
         "question": "How many times does the square change colour?", "candidates": ["2", "0", "1"], "answer": "1"},
    ]
    write_docs(out, rows)


def build_longvideobench(out: Path) -> None:
    """Rows as in ``longvideobench/LongVideoBench`` (validation): option0..option4 ("N/A" when unused),
    ``correct_choice`` a 0-based index, videos at ``videos/<video_path>``."""
    _write_shapes(out, {"shapes_red_square_left_to_right": "videos/lvb_red_square.mp4",
                        "shapes_three_blue_circles_bouncing": "videos/lvb_blue_circles.mp4"})
    base = {"position": [0], "topic_category": "NP-News-Programs", "level": "L1-Perception",
            "subtitle_path": "", "duration_group": 15, "starting_timestamp_for_subtitles": 0.0, "duration": 4.0,
            "view_count": 0}
    rows = [
        {"video_id": "lvb_red_square", "question": "What colour is the square that moves across the screen?",
         "question_wo_referring_query": "What colour is the square?", "option0": "Green", "option1": "Blue",
         "option2": "Yellow", "option3": "Red", "option4": "Purple", "correct_choice": 3,
         "question_category": "S2A", "id": "lvb_red_square_0", "video_path": "lvb_red_square.mp4", **base},
        {"video_id": "lvb_blue_circles", "question": "How many circles are visible?",
         "question_wo_referring_query": "How many circles are visible?", "option0": "Three", "option1": "One",
         "option2": "Two", "option3": "Six", "option4": "N/A", "correct_choice": 0,
         "question_category": "S2O", "id": "lvb_blue_circles_0", "video_path": "lvb_blue_circles.mp4", **base},
        {"video_id": "lvb_red_square", "question": "Where is the square at the end of the video?",
         "question_wo_referring_query": "Where is the square at the end?", "option0": "At the top",
         "option1": "On the left", "option2": "On the right", "option3": "At the bottom", "option4": "N/A",
         "correct_choice": 2, "question_category": "E2O", "id": "lvb_red_square_1",
         "video_path": "lvb_red_square.mp4", **base},
    ]
    write_docs(out, rows)


def build_egoschema(out: Path) -> None:
    """Rows as in ``lmms-lab/egoschema`` config ``Subset`` (test): five "A. text" options, ``answer`` the index
    as a string, videos at ``videos/<video_idx>.mp4``."""
    ids = {"shapes_red_square_left_to_right": "0074f737-11cb-497d-8d07-77c3a8127391",
           "shapes_square_green_then_yellow": "00b9a0de-c59e-49cb-a127-6081e2fb8c8e"}
    _write_shapes(out, {clip: f"videos/{uid}.mp4" for clip, uid in ids.items()})
    red, green = ids.values()
    rows = [
        {"question_idx": "0", "video_idx": red,
         "question": "What is the overall movement of the object seen throughout the video?",
         "option": ["A. It stays in the centre.", "B. It moves steadily from left to right.",
                    "C. It moves from right to left.", "D. It moves up and down.", "E. It spins in place."],
         "answer": "1"},
        {"question_idx": "1", "video_idx": green,
         "question": "Summarise how the object changes over the course of the video.",
         "option": ["A. It shrinks.", "B. It turns from yellow to green.", "C. It splits into two.",
                    "D. It turns from green to yellow.", "E. It moves to the corner."], "answer": "3"},
        {"question_idx": "2", "video_idx": red, "question": "What colour is the object throughout the video?",
         "option": ["A. Red.", "B. Green.", "C. Blue.", "D. Yellow.", "E. White."], "answer": "0"},
    ]
    write_docs(out, rows)


def build_tomato(out: Path) -> None:
    """Rows as in ``lmms-lab/TOMATO`` (test): bare option texts, ``answer`` a 0-based index, videos at
    ``videos/<reason_type>/<key>.mp4``."""
    _write_shapes(out, {"shapes_red_square_left_to_right": "videos/direction/human_001.mp4",
                        "shapes_three_blue_circles_bouncing": "videos/count/simulated_001.mp4"})
    rows = [
        {"id": "direction_001", "question": "Which direction is the red square moving in?",
         "options": ["Left", "Right", "Up", "Down", "Not moving"], "answer": 1,
         "video_path": "videos/direction/human_001.mp4", "reason_type": "Direction", "demonstration_type": "Object"},
        {"id": "count_001", "question": "How many times does the leftmost circle reach its highest point?",
         "options": ["0", "1", "2", "3", "4", "5"], "answer": 2,
         "video_path": "videos/count/simulated_001.mp4", "reason_type": "Count", "demonstration_type": "Simulated"},
    ]
    write_docs(out, rows)


def build_charades(out: Path) -> None:
    """Rows as in ``lmms-lab/charades_sta`` (test): video file name, caption, ``timestamp`` [start, end] in s."""
    def shown(start: float, end: float, colour: tuple[int, int, int]) -> np.ndarray:
        return _clip(lambda img, p: _square(img, _W / 2, _H / 2, 12, colour) if start <= p * _SECONDS < end else None)

    write_video(out / "Charades_v1_480" / "3MSZA.mp4", shown(1.0, 2.5, _RED), _FPS)
    write_video(out / "Charades_v1_480" / "8W7Q2.mp4", shown(0.0, 2.0, _GREEN), _FPS)
    rows = [
        {"video": "3MSZA.mp4", "caption": "a red square appears in the middle", "timestamp": [1.0, 2.5],
         "duration": 4.0},
        {"video": "3MSZA.mp4", "caption": "the screen is empty again", "timestamp": [2.5, 4.0], "duration": 4.0},
        {"video": "8W7Q2.mp4", "caption": "a green square is shown", "timestamp": [0.0, 2.0], "duration": 4.0},
    ]
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# MMLU-Pro: our own questions in TIGER-Lab/MMLU-Pro's columns; ten options A-J, and one question with four
# (the hub keeps the shorter option lists of questions it could not extend to ten)


_MMLU_PRO_QUESTIONS = [
    # (category, src, question, options, answer index)
    ("math", "ori_mmlu-high_school_mathematics",
     "What is the remainder when 2^10 is divided by 7?",
     ["0", "3", "5", "6", "1", "4", "2", "7", "9", "8"], 6),
    ("physics", "stemez-Physics",
     "A ball is dropped from rest. Ignoring air resistance and taking g = 10 m/s^2, how far does it fall in the "
     "first 3 seconds?",
     ["15 m", "30 m", "60 m", "90 m", "10 m", "20 m", "120 m", "35 m", "50 m", "45 m"], 9),
    ("computer science", "ori_mmlu-college_computer_science",
     "How many edges does a tree with 12 vertices have?",
     ["11", "12", "13", "10", "24", "6", "22", "66", "132", "1"], 0),
    ("history", "ori_mmlu-high_school_world_history",
     "In which century did the printing press with movable metal type spread across Europe after Gutenberg?",
     ["The 15th century", "The 12th century", "The 18th century", "The 20th century"], 0),
    ("economics", "ori_mmlu-high_school_macroeconomics",
     "If nominal GDP grows by 5% and the GDP deflator rises by 2%, real GDP grows by approximately",
     ["7%", "2.5%", "10%", "2%", "5%", "1%", "3%", "0%", "-3%", "12%"], 6),
]


def build_mmlu_pro(out: Path) -> None:
    rows = []
    for i, (category, src, question, options, answer) in enumerate(_MMLU_PRO_QUESTIONS):
        rows.append({"question_id": 70001 + i, "question": question, "options": options,
                     "answer": "ABCDEFGHIJ"[answer], "answer_index": answer, "cot_content": "",
                     "category": category, "src": src})
    write_docs(out, rows)


# --------------------------------------------------------------------------------------------------
# Audio question answering (MMAU, EHSL, RACE-audio, MELD, ClothoAQA, spoken QA): speech from the offline
# neural TTS (hibari-tts, seeded: deterministic; the omniworld generator's Speaker), sounds and music made
# here, all 16 kHz mono, so every question is true of its clip


_QA_RATE = 16_000
_SPEAKER: list[Any] = []


def speak(text: str) -> np.ndarray:
    """``text`` read by the offline TTS at 16 kHz (one Speaker per process: loading it takes a second)."""
    if not _SPEAKER:
        from unimoe.train.omniworld import Speaker

        _SPEAKER.append(Speaker())
    return _SPEAKER[0](text)


def tone(freq: float | np.ndarray, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    """A sine at ``freq`` Hz (or a per-sample frequency track) with 10 ms fades: no clicks."""
    n = int(round(seconds * _QA_RATE))
    track = np.broadcast_to(np.asarray(freq, dtype=np.float64), (n,))
    t = np.arange(n) / _QA_RATE
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
    return amplitude * np.sin(2 * np.pi * np.cumsum(track) / _QA_RATE) * fade


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * _QA_RATE)))


def _beeps(count: int, freq: float = 1000.0, on: float = 0.15, off: float = 0.25) -> np.ndarray:
    return np.concatenate([np.concatenate([tone(freq, on), silence(off)]) for _ in range(count)])


def _notes(freqs: Iterable[float], seconds: float) -> np.ndarray:
    return np.concatenate([tone(f, seconds) for f in freqs])


def _chord(freqs: Iterable[float], seconds: float) -> np.ndarray:
    return sum(tone(f, seconds, amplitude=0.15) for f in freqs)


def _clicks(bpm: float, seconds: float) -> np.ndarray:
    out = silence(seconds)
    for start in np.arange(0.0, seconds - 0.05, 60.0 / bpm):
        i = int(start * _QA_RATE)
        click = tone(1500.0, 0.03, amplitude=0.5)
        out[i: i + len(click)] = click
    return out


_C4, _D4, _E4, _F4, _G4, _A4, _B4, _C5 = 261.63, 293.66, 329.63, 349.23, 392.00, 440.00, 493.88, 523.25

# (id, task, audio maker, question, choices, answer as stored, category, sub-category, difficulty)
_MMAU_ITEMS: list[tuple[str, str, Callable[[], np.ndarray], str, list[str], str, str, str, str]] = [
    ("mmau-speech-1", "speech", lambda: speak("Could you please close the window? It is cold in here."),
     "What does the speaker ask the listener to do?",
     ["Open the door", "Close the window", "Turn on the heater", "Leave the room"], "Close the window",
     "Speaker intent", "Request understanding", "easy"),
    ("mmau-speech-2", "speech", lambda: speak("I have three cats and two dogs at home."),
     "How many pets does the speaker have in total?", ["Three", "Six", "Two", "Five"], "Five",
     "Conversational fact retrieval", "Counting", "medium"),
    ("mmau-speech-3", "speech", lambda: speak("The train to Boston leaves at half past seven."),
     "Where is the train going?", ["Chicago", "Denver", "Boston"], "Boston",  # three choices only
     "Conversational fact retrieval", "Destination", "easy"),
    ("mmau-sound-1", "sound", lambda: _beeps(3), "How many beeps are heard in the clip?",
     ["Two", "Three", "Four", "Five"], "Three", "Counting", "Event counting", "easy"),
    ("mmau-sound-2", "sound", lambda: tone(np.linspace(300.0, 1800.0, 2 * _QA_RATE), 2.0),
     "How does the pitch of the sound change over time?",
     ["It stays the same", "It falls", "It rises", "It alternates between two pitches"], "It rises",
     "Acoustic scene reasoning", "Pitch contour", "medium"),
    ("mmau-sound-3", "sound", lambda: np.concatenate([silence(1.0), _beeps(1, freq=600.0, on=0.6, off=0.4)]),
     "When does the sound occur in the clip?",
     ["Only in the first half", "Throughout the whole clip", "Only in the second half", "Never"],
     "only in the second half",  # gold stored in another case than the choice: compared lower-cased
     "Temporal reasoning", "Onset", "hard"),
    ("mmau-music-1", "music", lambda: _notes([_C4, _D4, _E4, _F4, _G4, _A4, _B4, _C5], 0.25),
     "Is the melody ascending or descending?", ["Descending", "Ascending"], "Ascending",  # two choices
     "Melodic structure", "Contour", "easy"),
    ("mmau-music-2", "music", lambda: _clicks(120.0, 2.0), "What is the approximate tempo of the beat?",
     ["60 BPM", "90 BPM", "120 BPM", "180 BPM"], "120 BPM", "Rhythm and tempo", "Tempo", "medium"),
    ("mmau-music-3", "music", lambda: _chord([_C4, _E4, _G4], 2.0), "What quality is the chord that is played?",
     ["Major", "Minor", "Diminished", "Augmented"], "Major", "Harmony", "Chord quality", "hard"),
]


def build_mmau(out: Path) -> None:
    """Rows as in ``lmms-lab/mmau`` test-mini: ``choices`` a JSON string, ``answer`` the choice text; one
    folder for the speech, sound and music tasks (each keeps its ``task`` rows)."""
    rows = []
    for i, (item_id, task, make, question, choices, answer, category, sub, difficulty) in enumerate(_MMAU_ITEMS):
        audio = f"audio/{item_id}.wav"
        write_wav(out / audio, make(), _QA_RATE)
        rows.append({"id": item_id, "audio_id": f"{item_id}.wav", "audio": audio, "question": question,
                     "choices": json.dumps(choices), "answer": answer, "dataset": "unimoe-harness-fixture",
                     "task": task, "split": "test-mini", "category": category, "sub-category": sub,
                     "difficulty": difficulty})
    write_docs(out, rows)


# ClothoAQA: two generated clips, several single-word questions each (yes/no and open, as in Clotho-AQA)

_CLOTHO_AQA_CLIPS: dict[str, Callable[[], np.ndarray]] = {
    "three_beeps.wav": lambda: _beeps(3),
    "low_hum.wav": lambda: tone(120.0, 2.0, amplitude=0.4),
}
_CLOTHO_AQA_QUESTIONS = [  # (clip, question, answer as crowd-sourced: lower case, one word)
    ("three_beeps.wav", "Is there a beeping sound?", "yes"),
    ("three_beeps.wav", "How many beeps are there?", "three"),
    ("three_beeps.wav", "Is a person speaking?", "no"),
    ("low_hum.wav", "Is the sound high pitched?", "no"),
    ("low_hum.wav", "Does the sound stop and start?", "no"),
]


def build_clotho_aqa(out: Path) -> None:
    """Rows as in ``lmms-lab/ClothoAQA`` (config clotho_aqa): ``audio, question, answer``."""
    for name, make in _CLOTHO_AQA_CLIPS.items():
        write_wav(out / "audio" / name, make(), _QA_RATE)
    write_docs(out, ({"audio": f"audio/{clip}", "question": q, "answer": a} for clip, q, a in _CLOTHO_AQA_QUESTIONS))


# Spoken QA: the question is the audio; the reply must contain a gold answer string

_LLAMA_QUESTIONS = [  # (question read aloud, answer)
    ("What is the capital of France?", "Paris"),
    ("How many legs does a spider have?", "eight"),
    ("What colour is a ripe banana?", "yellow"),
]
_WEB_QUESTIONS = [  # (question, answers), lower-case questions as in WebQuestions
    ("what language do people speak in brazil?", ["Portuguese", "Portuguese Language"]),
    ("who wrote romeo and juliet?", ["William Shakespeare"]),
    ("what is the largest ocean on earth?", ["Pacific Ocean"]),
]


def build_llama_questions(out: Path) -> None:
    """Rows as in ``fixie-ai/llama-questions`` (test): ``question, answer, audio``."""
    rows = []
    for i, (question, answer) in enumerate(_LLAMA_QUESTIONS):
        audio = f"audio/llama_q{i:03d}.wav"
        write_wav(out / audio, speak(question), _QA_RATE)
        rows.append({"question": question, "answer": answer, "audio": audio})
    write_docs(out, rows)


def build_web_questions_spoken(out: Path) -> None:
    """Rows as WebQuestions test (``url, question, answers``) plus the spoken question's ``audio``."""
    rows = []
    for i, (question, answers) in enumerate(_WEB_QUESTIONS):
        audio = f"audio/webq_{i:04d}.wav"
        write_wav(out / audio, speak(question), _QA_RATE)
        slug = answers[0].replace(" ", "_")
        rows.append({"url": f"http://www.freebase.com/view/en/{slug.lower()}", "question": question,
                     "answers": answers, "audio": audio})
    write_docs(out, rows)


# MELD: utterances whose words carry the emotion (TTS prosody is neutral), as AAC-in-MP4 like the release's
# dia{D}_utt{U}.mp4 clips (audio track only)

_MELD_UTTERANCES = [  # (Dialogue_ID, Utterance_ID, Speaker, Utterance, Emotion, Sentiment)
    (0, 0, "Monica", "Okay, the meeting starts at three.", "neutral", "neutral"),
    (0, 1, "Chandler", "This is the best day of my life, I am so happy!", "joy", "positive"),
    (1, 0, "Ross", "I cannot believe you did that. I am furious!", "anger", "negative"),
    (1, 1, "Rachel", "My old dog died yesterday. I miss him so much.", "sadness", "negative"),
]


def build_meld(out: Path) -> None:
    """Rows as MELD's ``test_sent_emo.csv``; media ``dia{Dialogue_ID}_utt{Utterance_ID}.mp4``."""
    rows = []
    for sr, (dia, utt, speaker, text, emotion, sentiment) in enumerate(_MELD_UTTERANCES, 1):
        write_aac(out / "audio" / f"dia{dia}_utt{utt}.mp4", speak(text), _QA_RATE)
        rows.append({"Sr No.": sr, "Utterance": text, "Speaker": speaker, "Emotion": emotion,
                     "Sentiment": sentiment, "Dialogue_ID": dia, "Utterance_ID": utt, "Season": 1,
                     "Episode": 1, "StartTime": "00:00:01,000", "EndTime": "00:00:03,000"})
    write_docs(out, rows)


# Listening comprehension (EHSL, RACE-audio): a spoken passage (AAC in MP4: small) and lettered questions on it

_EHSL_PASSAGES = [  # (clip, subset, passage, [(question, options, answer letter)])
    ("ehsl_short_01", "short", "Excuse me, which bus goes to the city library? Take number twelve.",
     [("Which bus goes to the city library?", ["Number two", "Number twelve", "Number twenty", "Number ten"], "B")]),
    ("ehsl_short_02", "short", "I liked the blue coat, but it was too expensive, so I bought the grey one.",
     [("What colour is the coat the speaker bought?", ["Blue", "Black", "Grey", "Brown"], "C")]),
    ("ehsl_long_01", "long",
     "Good morning, everyone. Our school trip to the science museum starts at nine o'clock. Please bring your "
     "own lunch, because the museum cafe is closed on Mondays.",
     [("Where are the students going?", ["To a zoo", "To the science museum", "To a park", "To a theatre"], "B"),
      ("Why should the students bring their own lunch?",
       ["The trip is long", "Lunch is expensive there", "The cafe is closed", "The teacher will check"], "C"),
      ("When does the trip start?", ["At eight", "At nine", "At ten", "At noon"], "B")]),
]

_RACE_PASSAGES = {  # level -> (example_id, passage, [(question, options, answer)]); "_" marks RACE's cloze gap
    "middle": ("middle1001.txt", "Tom gets up at six every morning. He walks his dog in the park, then he has "
               "bread and milk for breakfast.",
               [("Tom gets up at _ every morning.", ["five", "six", "seven", "eight"], "B"),
                ("What does Tom do after he gets up?",
                 ["He walks his dog.", "He reads a book.", "He goes swimming.", "He cooks rice."], "A"),
                ("What does Tom have for breakfast?", ["Rice", "Eggs", "Bread and milk", "Noodles"], "C")]),
    "high": ("high2001.txt", "Scientists have found that people who sleep less than six hours a night catch "
             "colds more easily. Sleep helps the immune system fight infections.",
             [("According to the passage, people who sleep little are more likely to _.",
               ["catch colds", "gain weight", "feel happy", "work harder"], "A"),
              ("What is the main idea of the passage?",
               ["Colds are common in winter.", "Sleep supports the body's defences.", "Scientists sleep little.",
                "Infections are rare."], "B")]),
}


def build_ehsl(out: Path) -> None:
    """Rows in the documented local schema (``id, audio, question, options, answer, subset``)."""
    rows = []
    for clip, subset, passage, questions in _EHSL_PASSAGES:
        audio = f"audio/{clip}.m4a"
        write_aac(out / audio, speak(passage), _QA_RATE)
        for k, (question, options, answer) in enumerate(questions, 1):
            rows.append({"id": f"{clip}-q{k}", "audio": audio, "question": question, "options": options,
                         "answer": answer, "subset": subset})
    write_docs(out, rows)


def _race_builder(level: str) -> Callable[[Path], None]:
    def build(out: Path) -> None:
        """ehovy/race columns (``example_id, article, question, options, answer``) + ``id`` and ``audio``."""
        example_id, passage, questions = _RACE_PASSAGES[level]
        audio = f"audio/{example_id.removesuffix('.txt')}.m4a"
        write_aac(out / audio, speak(passage), _QA_RATE)
        write_docs(out, ({"id": f"{example_id}-{k}", "example_id": example_id, "article": passage, "question": q,
                          "options": options, "answer": a, "audio": audio}
                         for k, (q, options, a) in enumerate(questions)))
    return build
# Image multiple choice (tasks/image_mcq): real photos, and drawn diagrams, charts and question screenshots
# whose answers are true by construction. Rows follow each benchmark's hub schema.


def _small_photo(out: Path, name: str, longest: int = 160) -> str:
    relative = f"images/{name}.jpg"
    _save_jpeg(out / relative, photo(name, _fit(photo(name).shape, longest)))
    return relative


def _drawing(size: tuple[int, int], draw_fn: Callable[[Any], None]) -> np.ndarray:
    """A white canvas drawn on with PIL (default bundled font) as uint8 RGB."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    draw_fn(ImageDraw.Draw(image))
    return np.asarray(image)


def _font(size: int = 13) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _save_png(out: Path, relative: str, image: np.ndarray) -> str:
    write_png(out / relative, image)
    return relative


def _boxes(out: Path, name: str, boxes: Sequence[tuple[int, int, int, int, str]]) -> str:
    """Filled rectangles ``(x0, y0, x1, y1, colour)`` on a 160x120 canvas, in drawing order (later on top)."""
    return _save_png(out, f"images/{name}.png", _drawing((160, 120), lambda d: [
        d.rectangle(b[:4], fill=b[4], outline="black") for b in boxes]))


def _text_card(out: Path, name: str, lines: Sequence[str], width: int = 320) -> str:
    """Lines of text on a white card: a screenshot of a question (MMMU-Pro vision) or a web page."""
    font = _font(13)
    height = 12 + 18 * len(lines)
    return _save_png(out, f"images/{name}.png", _drawing((width, height), lambda d: [
        d.text((8, 6 + 18 * i), line, fill="black", font=font) for i, line in enumerate(lines)]))


def build_mmstar(out: Path) -> None:
    """``Lin-Chen/MMStar`` (val): options inside the question ("Options: A: ..., B: ..."); ``l2_category``
    groups of unequal size, since the reported average is an unweighted mean over them."""
    rows = [
        (0, "chelsea", "What animal is shown in the image?\nOptions: A: A dog, B: A cat, C: A rabbit, D: A bird",
         "B", "coarse perception", "image scene and topic"),
        (1, "rocket", "Is the rocket standing on the ground? Please answer yes or no.\nOptions: A: yes, B: no",
         "A", "coarse perception", "image scene and topic"),
        (2, "coffee", "What drink is in the cup?\nOptions: A: Tea, B: Milk, C: Orange juice, D: Coffee",
         "D", "fine-grained perception", "recognition"),
        (3, "astronaut", "What is the person in the image wearing?\nOptions: A: A tuxedo, B: A raincoat, "
         "C: A spacesuit, D: A wetsuit", "C", "instance reasoning", "single-instance reasoning"),
    ]
    write_docs(out, [{"index": i, "question": q, "image": _small_photo(out, name), "answer": a, "category": cat,
                      "l2_category": l2, "meta_info": {"source": "skimage", "split": "val",
                                                       "image_path": f"images/{name}.jpg"}}
                     for i, name, q, a, cat, l2 in rows])


_RWQA_TAIL = "\nPlease answer directly with only the letter of the correct option and nothing else."


def build_realworldqa(out: Path) -> None:
    """``lmms-lab/RealWorldQA`` (test): ``image, question, answer``; options and instruction are part of the
    question; some answers are numbers (the number-words filter) rather than letters."""
    rows = [
        ("rocket", "Is the rocket in flight or on the ground?\nA. In flight\nB. On the ground" + _RWQA_TAIL, "B"),
        ("chelsea", "How many cats are in the image? Please answer directly with a single word or number.", "1"),
        ("astronaut", "What is the person wearing?\nA. A raincoat\nB. A wetsuit\nC. A spacesuit" + _RWQA_TAIL, "C"),
        ("coffee", "What is on the saucer?\nA. A cup of coffee\nB. A glass of water\nC. A bowl of soup"
         + _RWQA_TAIL, "A"),
    ]
    write_docs(out, [{"image": _small_photo(out, name), "question": q, "answer": a} for name, q, a in rows])


def _life_cycle(d: Any) -> None:
    font = _font(13)
    for i, stage in enumerate(("egg", "larva", "pupa", "adult")):
        x = 8 + 78 * i
        d.rectangle((x, 40, x + 56, 72), outline="black", width=2)
        d.text((x + 8, 48), stage, fill="black", font=font)
        if i < 3:
            d.line((x + 58, 56, x + 76, 56), fill="black", width=2)
            d.polygon([(x + 76, 56), (x + 70, 52), (x + 70, 60)], fill="black")


def _labelled_shapes(d: Any) -> None:
    font = _font(14)
    d.ellipse((20, 30, 80, 90), outline="black", width=2)
    d.text((44, 94), "X", fill="black", font=font)
    d.rectangle((110, 30, 170, 90), outline="black", width=2)
    d.text((134, 94), "Y", fill="black", font=font)
    d.polygon([(200, 90), (230, 30), (260, 90)], outline="black", width=2)
    d.text((224, 94), "Z", fill="black", font=font)


def build_ai2d(out: Path) -> None:
    """``lmms-lab/ai2d`` (test): ``question, options`` (list), ``answer`` (the option's index as a string)."""
    cycle = _save_png(out, "images/life_cycle.png", _drawing((320, 112), _life_cycle))
    shapes = _save_png(out, "images/labelled_shapes.png", _drawing((280, 120), _labelled_shapes))
    rows = [
        ("Which stage comes directly after the egg?", ["adult", "larva", "pupa", "nymph"], "1", cycle),
        ("How many stages are shown in the life cycle?", ["2", "3", "4", "5"], "2", cycle),
        ("Which label marks the triangle?", ["X", "Y", "Z"], "2", shapes),
        ("What shape is labelled X?", ["circle", "square", "triangle"], "0", shapes),
    ]
    write_docs(out, [{"question": q, "options": o, "answer": a, "image": img} for q, o, a, img in rows])


def build_cv_bench(out: Path) -> None:
    """``nyu-visionx/CV-Bench`` (test): 2D rows from ADE20K and COCO, 3D rows from Omni3D, in unequal numbers
    so that the official overall (1/2 * ((ADE20K + COCO)/2 + Omni3D)) differs from the plain mean."""
    scenes = {
        "three_red_boxes": [(10, 40, 40, 70, "red"), (65, 40, 95, 70, "red"), (120, 40, 150, 70, "red")],
        "blue_left_green_right": [(10, 40, 50, 80, "blue"), (110, 40, 150, 80, "green")],
        "two_yellow_boxes": [(20, 30, 60, 70, "yellow"), (100, 50, 140, 90, "yellow")],
        "red_in_front_of_blue": [(70, 20, 130, 70, "blue"), (20, 40, 100, 110, "red")],
        "red_near_green_far_blue": [(20, 50, 50, 80, "red"), (60, 55, 85, 80, "green"), (130, 60, 150, 80, "blue")],
    }
    choose = "Select from the following choices."
    rows = [  # (idx, type, task, scene, question, choices, answer, source)
        (0, "2D", "Count", "three_red_boxes", "How many red boxes are in the image?", ["2", "3", "4", "1"], "(B)",
         "ADE20K"),
        (1, "2D", "Relation", "blue_left_green_right",
         "Considering the relative positions of the blue box and the green box in the image provided, where is "
         "the blue box located with respect to the green box?", ["left", "right"], "(A)", "ADE20K"),
        (2, "2D", "Count", "two_yellow_boxes", "How many yellow boxes are in the image?", ["3", "1", "2", "0"],
         "(C)", "COCO"),
        (3, "3D", "Depth", "red_in_front_of_blue",
         "Which object is closer to the camera taking this photo, the red box or the blue box?",
         ["blue box", "red box"], "(B)", "Omni3D"),
        (4, "3D", "Distance", "red_near_green_far_blue",
         "Which of these two, the green box or the blue box, is closer to the red box?",
         ["green box", "blue box"], "(A)", "Omni3D"),
    ]
    docs = []
    for idx, kind, task, scene, question, choices, answer, source in rows:
        image = _boxes(out, scene, scenes[scene])
        prompt = f"{question} {choose}\n" + "\n".join(f"({'ABCDE'[i]}) {c}" for i, c in enumerate(choices))
        docs.append({"idx": idx, "type": kind, "task": task, "image": image, "question": question,
                     "choices": choices, "answer": answer, "prompt": prompt, "filename": image, "source": source,
                     "source_dataset": f"{source} fixture", "source_filename": image, "target_class": None,
                     "target_size": None, "bbox": None})
    write_docs(out, docs)


def build_mme_realworld(out: Path) -> None:
    """``yifanzhang114/MME-RealWorld-Lmms-eval`` (train): the image is base64 text in ``bytes``; options are
    stored labelled, "(A) ...", five of them."""
    import base64
    import io

    from PIL import Image

    def b64(name: str) -> str:
        buffer = io.BytesIO()
        Image.fromarray(photo(name, _fit(photo(name).shape, 128))).save(buffer, format="JPEG", quality=80)
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    rows = [
        (0, "rocket", "Where is the rocket?", ["In flight above the clouds", "On the launch pad", "Inside a hangar",
         "Floating in the sea", "The image does not feature the rocket."], "B", "Perception/Remote Sensing",
         "position"),
        (1, "chelsea", "What is the colour of the animal's fur?", ["Black", "White", "Green",
         "Orange and brown striped", "The image does not feature the animal."], "D", "Perception/Monitoring",
         "attribute/color"),
        (2, "coffee", "What can be inferred about the drink?", ["It is a cold soda", "It is a hot coffee",
         "It is a glass of wine", "It is orange juice", "The image does not feature a drink."], "B",
         "Reasoning/Diagram and Table", "intention"),
    ]
    write_docs(out, [{"index": i, "question": q, "multi-choice options": [f"({'ABCDE'[k]}) {o}" for k, o in enumerate(opts)],
                      "answer": a, "category": cat, "l2-category": l2, "bytes": b64(name)}
                     for i, name, q, opts, a, cat, l2 in rows])


def _bar_chart(d: Any) -> None:
    font = _font(12)
    for i, (label, value, colour) in enumerate((("2021", 30, "grey"), ("2022", 70, "steelblue"), ("2023", 50, "grey"))):
        x = 30 + 60 * i
        d.rectangle((x, 100 - value, x + 36, 100), fill=colour, outline="black")
        d.text((x + 4, 104), label, fill="black", font=font)
    d.line((20, 100, 210, 100), fill="black")


def _map(d: Any) -> None:
    font = _font(12)
    d.rectangle((10, 10, 110, 110), fill="lightgreen", outline="black")
    d.text((30, 52), "Park", fill="black", font=font)
    d.rectangle((120, 10, 220, 110), fill="lightblue", outline="black")
    d.text((150, 52), "Lake", fill="black", font=font)


def build_seedbench_2_plus(out: Path) -> None:
    """``doolayer/SEED-Bench-2-Plus`` (test): four ``choice_*`` columns; ``question_image_type`` chart / map /
    web, the reported sub-scores."""
    chart = _save_png(out, "images/bar_chart.png", _drawing((230, 124), _bar_chart))
    park_map = _save_png(out, "images/park_map.png", _drawing((230, 120), _map))
    web = _text_card(out, "web_page", ["Example Store  |  Home  Products  Cart", "",
                                        "Summer sale: 20% off all shoes", "Free delivery on orders over $50"])
    rows = [
        ("0", "chart", "bar chart", chart, "Which year has the tallest bar?", ["2021", "2022", "2023", "2020"], "B"),
        ("1", "chart", "bar chart", chart, "How many bars are in the chart?", ["2", "4", "3", "5"], "C"),
        ("2", "map", "park map", park_map, "What lies to the right of the park?",
         ["A road", "A forest", "A school", "A lake"], "D"),
        ("3", "web", "shopping", web, "What discount does the sale offer on shoes?", ["20%", "50%", "10%", "5%"],
         "A"),
    ]
    write_docs(out, [{"question_id": qid, "question_image_type": kind, "question_image_subtype": sub,
                      "data_id": image, "image": image, "question": q,
                      **{f"choice_{k}": c for k, c in zip("ABCD", choices)}, "answer": a}
                     for qid, kind, sub, image, q, choices, a in rows])


def build_mmmu_val(out: Path) -> None:
    """``lmms-lab/MMMU`` (validation): ``options`` is a Python-literal string; ``<image k>`` tags (also inside
    options, and out of order) name the ``image_k`` columns; one open question with a numeric answer."""
    cat, rocket, coffee = (_small_photo(out, n) for n in ("chelsea", "rocket", "coffee"))
    squares = _boxes(out, "three_red_boxes", [(10, 40, 40, 70, "red"), (65, 40, 95, 70, "red"),
                                              (120, 40, 150, 70, "red")])
    empty = {f"image_{k}": None for k in range(1, 8)}
    rows = [
        ("validation_Art_1", "<image 1> Which animal is shown in the painting-like photo?",
         "['A dog', 'A cat', 'A horse', 'A cow']", "B", "multiple-choice", {"image_1": cat}, "Art History"),
        ("validation_Design_2", "Which of the two pictures shows a drink, <image 2> or <image 1>?",
         "['<image 1>', '<image 2>']", "B", "multiple-choice", {"image_1": rocket, "image_2": coffee},
         "Industrial Design"),
        ("validation_Math_3", "<image 1> How many red squares are in the figure?", "[]", "3", "open",
         {"image_1": squares}, "Arithmetic"),
        ("validation_Physics_4", "<image 1> Is the rocket standing on the ground?",
         "['Yes', 'No', 'It is in orbit']", "A", "multiple-choice", {"image_1": rocket}, "Mechanics"),
    ]
    write_docs(out, [{"id": i, "question": q, "options": o, "explanation": "", **empty, **images,
                      "img_type": "['Photographs']", "answer": a, "topic_difficulty": "Easy", "question_type": t,
                      "subfield": sub} for i, q, o, a, t, images, sub in rows])


_TEN = "ABCDEFGHIJ"


def build_mmmu_pro_standard(out: Path) -> None:
    """``MMMU/MMMU_Pro`` ("standard (10 options)", test): ten options A-J, answers beyond D."""
    cat, coffee = _small_photo(out, "chelsea"), _small_photo(out, "coffee")
    empty = {f"image_{k}": None for k in range(1, 8)}
    rows = [
        ("test_Biology_1", "<image 1> Which animal is shown?", ["dog", "horse", "cow", "sheep", "goat", "rabbit",
         "cat", "fox", "bear", "deer"], "G", {"image_1": cat}, "Biology"),
        ("test_Art_2", "<image 1> What is served in the cup?", ["tea", "milk", "water", "juice", "soup", "wine",
         "cocoa", "soda", "beer", "coffee"], "J", {"image_1": coffee}, "Art"),
        ("test_Math_3", "What is 6 x 7?", ["36", "40", "42", "48", "49", "54", "56", "63", "64", "72"], "C", {},
         "Math"),
    ]
    write_docs(out, [{"id": i, "question": q, "options": str(opts), "explanation": "", **empty, **images,
                      "img_type": "['Photographs']", "answer": a, "topic_difficulty": "Easy", "subject": subj}
                     for i, q, opts, a, images, subj in rows])


def build_mmmu_pro_vision(out: Path) -> None:
    """``MMMU/MMMU_Pro`` (vision, test): ``id, image, answer, subject``; the question and its options exist
    only inside the screenshot."""
    rows = [
        ("test_Math_1", ["Question: What is 6 x 7?", "A. 36   B. 40   C. 42   D. 48   E. 49",
                         "F. 54   G. 56   H. 63   I. 64   J. 72"], "C", "Math"),
        ("test_Geography_2", ["Question: Which is the largest ocean on Earth?", "A. Atlantic   B. Indian",
                              "C. Arctic   D. Southern   E. Pacific"], "E", "Geography"),
        ("test_Chemistry_3", ["Question: What is the chemical symbol for gold?", "A. Ag   B. Au   C. Gd",
                              "D. Go   E. Al"], "B", "Chemistry"),
    ]
    write_docs(out, [{"id": i, "image": _text_card(out, i, lines), "answer": a, "subject": subj}
                     for i, lines, a, subj in rows])


# --------------------------------------------------------------------------------------------------


BUILDERS: dict[str, Callable[[Path], None]] = {
    "videomme": build_videomme,
    "librispeech_test_clean": build_librispeech,
    "mmbench_en_dev": build_mmbench,
    "gpqa_diamond": build_gpqa,
    "clotho_v2_caption": build_clotho,
    "rain100l_derain": build_rain100l,
    "vsibench": build_vsibench,
    "worldsense": build_worldsense,
    "omnibench": build_omnibench,
    "mvbench": build_mvbench,
    "longvideobench_val": build_longvideobench,
    "egoschema": build_egoschema,
    "tomato": build_tomato,
    "charades_sta": build_charades,
    "mmlu_pro": build_mmlu_pro,
    "mmau": build_mmau,
    "clotho_aqa": build_clotho_aqa,
    "llama_questions": build_llama_questions,
    "web_questions_spoken": build_web_questions_spoken,
    "meld": build_meld,
    "ehsl": build_ehsl,
    "race_audio_middle": _race_builder("middle"),
    "race_audio_high": _race_builder("high"),
    "mmbench_cn_dev": build_mmbench_cn,
    "mmstar": build_mmstar,
    "realworldqa": build_realworldqa,
    "ai2d": build_ai2d,
    "cv_bench": build_cv_bench,
    "mme_realworld": build_mme_realworld,
    "seedbench_2_plus": build_seedbench_2_plus,
    "mmmu_val": build_mmmu_val,
    "mmmu_pro_standard": build_mmmu_pro_standard,
    "mmmu_pro_vision": build_mmmu_pro_vision,
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
