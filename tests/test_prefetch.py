"""Media prefetching: workers decode exactly what the adapter then asks for, ahead of it, within a bounded
window; results (and cache keys) are those of decoding inline."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from harness import media
from harness.api import AudioPart, MediaError, Message, Request, VideoPart
from harness.catalog import build_task, load_entry
from harness.evaluate import evaluate
from harness.models.unimoe import UniMoEAdapter
from harness.prefetch import Prefetcher, planned_loads
from tasks.fixtures.writers import write_video_with_audio
from tests.run_outputs import predictions


def _first_requests(task_name: str, n: int) -> list[Request]:
    task = build_task(load_entry(task_name))
    return [task.build_request(row) for row, _ in zip(task.docs(), range(n))]


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(16_000 * 3)).astype(np.float32)
    return write_video_with_audio(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, 4, audio, 16_000)


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_the_adapter_takes_every_planned_decoding(clip_with_sound):
    """The prefetcher's plan and the Uni-MoE adapter's own loader calls agree key for key (else nothing would
    ever be served from the workers)."""
    requests = [r for name in ("omniworld_image", "omniworld_video", "omniworld_omni")
                for r in _first_requests(name, 1)]
    requests.append(Request("clip", "1", (Message.user(VideoPart(str(clip_with_sound), fps=2.0, max_frames=4,
                                                                 use_audio=True, start_time=0.5), "what?"),)))
    adapter = UniMoEAdapter("tiny", init="random")  # builds its model only when it generates
    try:
        for request in requests:
            loads = planned_loads(request)
            assert loads
            for loader, kwargs in loads:
                media.offer(media.load_key(loader, **kwargs), _done(media.decode(loader, **kwargs)))
            adapter._conversation(request)
            assert not media._AHEAD, f"{request.task}: decoded ahead but never asked for: {list(media._AHEAD)}"
    finally:
        media._AHEAD.clear()


def test_workers_decode_ahead_within_the_window_and_serve_the_loader():
    requests = _first_requests("omniworld_audio", 8)
    batches = [requests[i:i + 2] for i in range(0, 8, 2)]
    with Prefetcher(num_workers=2, depth=1) as prefetcher:
        for index, batch in enumerate(prefetcher.ahead(batches, lambda b: b)):
            waiting = sum(len(q) for q in media._AHEAD.values())
            assert waiting == 2 * min(2, len(batches) - index)  # this batch and one ahead: bounded
            if index == 1:
                continue  # a batch whose media nobody asks for is dropped when it is done
            for request in batch:
                (part,) = request.media()
                served = media.load_audio(part.path)
                assert np.array_equal(served, media.decode("load_audio", part.path))
        assert not media._AHEAD


def test_a_decoding_failure_in_a_worker_is_the_loader_error(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    request = Request("t", "1", (Message.user(AudioPart(str(broken)), "?"),))
    with Prefetcher(num_workers=1) as prefetcher:
        for _ in prefetcher.ahead([[request]], lambda b: b):
            with pytest.raises(MediaError, match="broken.wav"):
                media.load_audio(str(broken))
    assert not media._AHEAD


def test_a_run_with_prefetching_equals_one_without(tmp_path, monkeypatch):
    started, untaken = [], []
    offer, withdraw = media.offer, media.withdraw

    def counted_offer(key, decoding):
        started.append(key)
        offer(key, decoding)

    def counted_withdraw(key, decoding):
        if decoding in media._AHEAD.get(key, ()):
            untaken.append(key)
        withdraw(key, decoding)

    monkeypatch.setattr(media, "offer", counted_offer)
    monkeypatch.setattr(media, "withdraw", counted_withdraw)
    runs = {workers: evaluate("omniworld_omni", "unimoe_tiny", output_dir=tmp_path / str(workers), cache=False,
                              num_workers=workers, batch_size=4, rebuild_leaderboards=False).run_dir
            for workers in (0, 2)}
    assert predictions(runs[2]) == predictions(runs[0])
    assert len(started) == 40 and not untaken  # an image and an audio file per sample, all served from workers
    assert not media._AHEAD


def test_a_dead_worker_means_decoding_inline_not_a_failed_sample():
    from concurrent.futures.process import BrokenProcessPool

    (request,) = _first_requests("omniworld_audio", 1)
    (part,) = request.media()
    died: Future = Future()
    died.set_exception(BrokenProcessPool("a worker died"))
    media.offer(media.load_key("load_audio", part.path), died)
    assert np.array_equal(media.load_audio(part.path), media.decode("load_audio", part.path))
    assert not media._AHEAD
