"""Judge prompts with images: content parts on the wire, protocol resizing, cache keys over the image bytes,
the VIEScore and WISE prompt texts and reply parsers."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from harness.api import Response, stable_hash
from harness.judges.base import CallPolicy, JudgeCache, JudgeImage
from harness.judges.llm import PROMPTS, AdapterJudge, OpenAICompatibleJudge, area_size, judge_image
from tests.judges.fake_endpoint import FakeServer, user_images, user_text


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def make_judge(server, tmp_path, prompt="mmbench_matcher", **kw):
    return OpenAICompatibleJudge(server.url, "fake-vlm", prompt, cache=JudgeCache(tmp_path / "judge.sqlite"),
                                 policy=CallPolicy(backoff_s=0.0, retries=1), **kw)


def png(path, size=(80, 60), color=(200, 30, 30)):
    Image.new("RGB", size, color).save(path)
    return path


def decode(url: str) -> Image.Image:
    head, data = url.split(",", 1)
    assert head.endswith(";base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_text_only_cache_keys_are_unchanged(tmp_path):
    j = OpenAICompatibleJudge("http://127.0.0.1:1/v1", "m", "mmbench_matcher")
    assert j.key("p", "v@1") == stable_hash([j.identity(), "v@1", "p"], n=32)
    assert "temperature" not in j.identity()  # greedy judges keep their identity (and keys)


def test_area_resize_follows_gedit():
    assert area_size(640, 480, 512 * 512) == (591, 443)
    assert area_size(512, 512, 512 * 512) == (512, 512)
    assert area_size(300, 600, 512 * 512) == (362, 724)


def test_request_carries_the_images_after_the_text(server, tmp_path):
    server.reply = lambda p: '{"score": [7, 9], "reasoning": "ok"}'
    src, edit = png(tmp_path / "s.png", (640, 480)), png(tmp_path / "e.png", (300, 200), (0, 0, 255))
    images = [judge_image(src, area=512 * 512, fmt="JPEG"), judge_image(edit, area=512 * 512, fmt="JPEG")]
    v = make_judge(server, tmp_path).ask(using="viescore_tie_sc", images=images, instruction="Make it blue.")
    assert v.ok and v.value == [7.0, 9.0]
    body = server.bodies[-1]
    content = body["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url", "image_url"]
    assert user_text(body) == PROMPTS["viescore_tie_sc"].render(instruction="Make it blue.")
    urls = user_images(body)
    assert all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert [decode(u).size for u in urls] == [(591, 443), (627, 418)]
    assert decode(urls[1]).format == "JPEG"


def test_cache_key_covers_the_image_bytes(server, tmp_path):
    server.reply = lambda p: "[8, 8]"
    red, blue = png(tmp_path / "r.png"), png(tmp_path / "b.png", color=(0, 0, 255))
    ask = lambda j, path: j.ask(using="viescore_pq", images=[judge_image(path)])  # noqa: E731
    assert ask(make_judge(server, tmp_path), red).value == [8.0] * 2 and server.calls == 1
    again = ask(make_judge(server, tmp_path), red)  # a rerun: same bytes, no call
    assert again.cached and server.calls == 1
    assert not ask(make_judge(server, tmp_path), blue).cached and server.calls == 2  # other bytes: a new call
    j = make_judge(server, tmp_path)
    text_key = j.key(PROMPTS["viescore_pq"].render(), "viescore_pq@1")
    assert text_key != j.key(PROMPTS["viescore_pq"].render(), "viescore_pq@1", [judge_image(red)])


def test_raw_file_bytes_system_message_and_default_temperature(server, tmp_path):
    server.reply = lambda p: "Consistency: 2\nRealism: 1\nAesthetic Quality: 0"
    path = png(tmp_path / "g.png")
    j = make_judge(server, tmp_path, temperature=None)
    v = j.ask(using="wise_wiscore", images=[judge_image(path)], prompt="A cat", explanation="Just a cat")
    assert v.value == {"consistency": 2.0, "realism": 1.0, "aesthetic_quality": 0.0}
    body = server.bodies[-1]
    assert body["messages"][0] == {"role": "system", "content": PROMPTS["wise_wiscore"].system}
    (url,) = user_images(body)
    assert url == "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()  # bytes as they are
    assert "temperature" not in body and body["max_tokens"] == 64
    assert j.identity()["temperature"] is None


def test_adapter_judge_gets_the_images_as_files(tmp_path):
    seen = []

    class Looker:
        name = "looker"

        def fingerprint(self):
            return "looker"

        def generate(self, requests):
            (req,) = requests
            seen.append([open(m.path, "rb").read() for m in req.media()])
            return [Response(text="[6, 7]")]

    image = JudgeImage(b"\x89PNG fake bytes")
    v = AdapterJudge(Looker(), "viescore_pq").ask(images=[image])
    assert v.value == [6.0, 7.0] and seen == [[image.data]]


@pytest.mark.parametrize("reply, scores", [
    ('||V^=^V||\n{\n"score" : [5, 10],\n"reasoning" : "fine"\n}\n||V^=^V||', [5, 10]),
    ('Sure! {"score": [3, 4], "reasoning": "meh"} done', [3, 4]),
    ('{"score": 6, "reasoning": "x"}', [6]),
    ('{"score" : [7, 8], "reasoning" : "it said "bad" quotes"}', [7, 8]),  # loose JSON: the list still reads
    ("[6, 0]", [6, 0]),
    ("9", [9]),
])
def test_viescore_reply_reader(reply, scores):
    assert PROMPTS["viescore_tie_sc"].parse(reply) == [float(s) for s in scores]


@pytest.mark.parametrize("reply", ["I cannot rate this.", "11", '{"reasoning": "no score"}'])
def test_viescore_unreadable_replies_are_malformed(reply):
    with pytest.raises(ValueError):
        PROMPTS["viescore_pq"].parse(reply)


def test_wise_reply_reader():
    parse = PROMPTS["wise_wiscore"].parse
    assert parse("**Consistency**: 1\n**Realism** 2\nAesthetic Quality 1") == {
        "consistency": 1.0, "realism": 2.0, "aesthetic_quality": 1.0}
    # the reference's regex allows bold marks before the colon only: "**Realism:** 2" is not read (scored 0)
    assert parse("**Consistency**: 1\n**Realism:** 2") == {"consistency": 1.0}
    assert parse("Consistency: 2") == {"consistency": 2.0}  # partial: the task scores the rest 0
    with pytest.raises(ValueError):
        parse("2\n1\n0")  # the 2026 bare-number fallback is not the paper-era reader


def test_prompt_texts_are_the_protocols():
    sc = PROMPTS["viescore_tie_sc"].render(instruction="Add a hat.")
    assert sc.startswith("You are a professional digital artist. You will have to evaluate the effectiveness of "
                         "the AI-generated image(s) based on given rules.\n")
    assert '{\n"score" : [...],\n"reasoning" : "..."\n}\nRULES:\n\nTwo images will be provided: ' in sc
    assert sc.endswith("image edit.\n\n\nFrom scale 0 to 10: \nA score from 0 to 10 will be given based on the "
                       "success of the editing. (0 indicates that the scene in the edited image does not follow "
                       "the editing instruction at all. 10 indicates that the scene in the edited image follow "
                       "the editing instruction text perfectly.)\n" + sc.split("perfectly.)\n", 1)[1])
    assert sc.endswith("'score2' evaluates the degree of overediting.\n\nEditing instruction: Add a hat.\n")
    pq = PROMPTS["viescore_pq"].render()
    assert "RULES:\n\nThe image is an AI-generated image.\n" in pq
    assert pq.endswith("10 indicates the image has no artifacts.\n)\nPut the score in a list such that output "
                       "score = [naturalness, artifacts]\n")
    wise = PROMPTS["wise_wiscore"].render(prompt="P", explanation="E")
    assert wise.startswith("Please evaluate strictly and return ONLY the three scores as requested.\n\n")
    assert "**Input Parameters**  \n- PROMPT: [User's original prompt to]  \n" in wise  # trailing spaces kept
    assert wise.endswith('--- \nHere are the Prompt and EXPLANATION for this evaluation:\nPROMPT: "P"\n'
                         'EXPLANATION: "E"\nPlease strictly adhere to the scoring criteria and follow the template '
                         "format when providing your results.")
    assert PROMPTS["wise_wiscore"].system == ("You are a professional Vincennes image quality audit expert, please "
                                              "evaluate the image quality strictly according to the protocol.")
