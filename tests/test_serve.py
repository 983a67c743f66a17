"""`spacy-lexner serve`: the real CLI in a subprocess, on a free localhost
port, serving a tiny trained pipeline (lexner_tagger + a multimodal_entity_ruler
whose getter is a tiny CLIP, when transformers is installed).

The server is started once for the module, with 2 workers (the app-factory
path) and small limits, so the limit tests need no large bodies. Every
result is compared with what the same saved pipeline gives offline.

    LEXNER_WRITE_SCREENSHOTS=1 python -m pytest tests/test_serve.py -k chromium

rewrites docs/images/serve.png; otherwise the screenshot goes to a temp dir.
"""

import importlib.util
import io
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_lexner import set_image_context

from .headless_chromium import Browser, require_chromium
from .tiny_pipelines import RULER_PATTERNS, tiny_tagger_model, write_lexicon
from .util import REPO_ROOT, make_examples, train_nlp

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

HAS_CLIP = importlib.util.find_spec("transformers") is not None
MAX_BODY_BYTES, MAX_TEXTS, MAX_LENGTH = 20_000, 8, 200
SCREENSHOT = REPO_ROOT / "docs" / "images" / "serve.png"
CLIP_TAGS = ["dog", "person", "cat"]
# The docs' "Rocky" example: 旺财 is a person, unless the image shows a dog
# (then the ruler adds or, over the tagger's PER, relabels it as ANIMAL).
PATTERNS = RULER_PATTERNS + [
    {"label": "PER", "pattern": "旺财"},
    {"label": "ANIMAL", "pattern": "旺财", "visual": {"tags_any": ["dog"], "min_score": 0.5}, "relabel": True},
]
TEXTS = [
    "张三在北京大学工作。",
    "",
    " ",
    " \n\t ",
    "李四😀去了上海🎉",
    "Apple Store 2024年在南京市开业",
    "王五是腾讯公司的工程师abc123",
    "旺财今天真可爱",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_pipeline(tmp: Path) -> Path:
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.add_pipe("lexner_tagger", config={"model": tiny_tagger_model()})
    ruler_config = {}
    if HAS_CLIP:
        from .tiny_clip import make_tiny_chinese_clip

        clip = make_tiny_chinese_clip(tmp / "clip")
        ruler_config = {
            "image_context": {"@misc": "spacy-lexner.clip_image_context.v1", "model_path": str(clip), "tags": CLIP_TAGS}
        }
    nlp.add_pipe("multimodal_entity_ruler", config=ruler_config)
    nlp.config["initialize"]["components"]["lexner_tagger"] = {
        "lexicon": {"@lexicons": "spacy-lexner.file_lexicon.v1", "paths": [str(write_lexicon(tmp / "lex.txt"))]}
    }
    train_nlp(nlp, make_examples(nlp), n_iter=30)
    # initialize() clears the ruler, so the patterns go in after training.
    nlp.get_pipe("multimodal_entity_ruler").add_patterns(PATTERNS)
    nlp.to_disk(tmp / "pipeline")
    return tmp / "pipeline"


def wait_until_up(url: str, proc: Optional[subprocess.Popen], log: Optional[Path], timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text() if log else ''}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer /health in {timeout} s:\n{log.read_text() if log else ''}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    pipeline = build_pipeline(tmp)
    port = free_port()
    log = tmp / "server.log"
    args = [sys.executable, "-m", "spacy_lexner", "serve", str(pipeline), "--port", str(port), "--workers", "2"]
    args += ["--max-body-bytes", str(MAX_BODY_BYTES), "--max-texts", str(MAX_TEXTS), "--max-length", str(MAX_LENGTH)]
    args += ["--no-access-log"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=tmp, env={**os.environ, "NO_COLOR": "1"}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc, log)
        yield {"url": url, "nlp": spacy.load(pipeline), "log": log, "tmp": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(
    url: str, body: bytes = b"", content_type: str = "application/json", method: str = "POST"
) -> Tuple[int, dict]:
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def post_json(url: str, payload) -> Tuple[int, dict]:
    return request(url, json.dumps(payload).encode("utf8"))


def multipart(fields: Dict[str, str], files: Dict[str, bytes]) -> Tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode("utf8"))
    for name, data in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.png"\r\n'
            "Content-Type: image/png\r\n\r\n".encode("utf8")
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode("utf8"))
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def offline(nlp: Language, text: str, tags=None) -> List[dict]:
    doc = nlp.make_doc(text)
    if tags is not None:
        set_image_context(doc, tags=tags)
    return [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in nlp(doc).ents]


def test_round_trip_equals_offline(served):
    status, data = post_json(served["url"] + "/ents", {"texts": TEXTS})
    assert status == 200, data
    meta = served["nlp"].meta
    assert data["pipeline"] == {"name": f"zh_{meta['name']}", "version": meta["version"]}
    assert [d["ents"] for d in data["docs"]] == [offline(served["nlp"], t) for t in TEXTS]
    assert any(d["ents"] for d in data["docs"]), "the tiny pipeline found nothing: the comparison is empty"
    assert all(d["image_tags"] is None for d in data["docs"])


def test_image_tags_change_the_result(served):
    text = "旺财今天真可爱"
    tags = [["dog", 0.93]]
    status, data = post_json(served["url"] + "/ents", {"texts": [text, text], "contexts": [{"image_tags": tags}, None]})
    assert status == 200, data
    with_dog, without = (d["ents"] for d in data["docs"])
    assert {"start": 0, "end": 2, "label": "ANIMAL", "text": "旺财"} in with_dog
    assert {"start": 0, "end": 2, "label": "PER", "text": "旺财"} in without
    assert with_dog == offline(served["nlp"], text, tags=[("dog", 0.93)])
    assert without == offline(served["nlp"], text)
    assert data["docs"][0]["image_tags"] == tags


@pytest.mark.skipif(not HAS_CLIP, reason="the CLIP getter needs transformers")
def test_uploaded_image_goes_through_the_clip_getter(served):
    import numpy
    from PIL import Image

    buffer = io.BytesIO()
    pixels = (numpy.random.default_rng(0).random((40, 48, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(buffer, format="PNG")
    payload = {"texts": ["旺财今天真可爱", "张三"], "contexts": [{"image": "photo"}, None]}
    body, content_type = multipart({"payload": json.dumps(payload)}, {"photo": buffer.getvalue()})
    status, data = request(served["url"] + "/ents", body, content_type)
    assert status == 200, data
    nlp = served["nlp"]
    doc = nlp.make_doc("旺财今天真可爱")
    doc.user_data["image"] = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    doc = nlp(doc)
    served_tags = data["docs"][0]["image_tags"]
    assert [t for t, _ in served_tags] == [t for t, _ in doc._.image_tags]
    numpy.testing.assert_allclose([s for _, s in served_tags], [s for _, s in doc._.image_tags], atol=1e-5)
    assert data["docs"][0]["ents"] == [
        {"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents
    ]
    assert data["docs"][1] == {"ents": offline(nlp, "张三"), "image_tags": None}
    # Bytes that are no image: a 422 that says so, not a warning and no context.
    body, content_type = multipart({"payload": json.dumps(payload)}, {"photo": b"no pixels here"})
    status, data = request(served["url"] + "/ents", body, content_type)
    assert status == 422 and "is not an image PIL can read" in data["error"]


BAD_REQUESTS = {
    "body too large": (json.dumps({"texts": ["字" * 7000]}), 413, "larger than 20,000 bytes"),
    "too many texts": (json.dumps({"texts": ["a"] * (MAX_TEXTS + 1)}), 422, f"Too many texts: {MAX_TEXTS + 1}"),
    "text too long": (json.dumps({"texts": ["a" * (MAX_LENGTH + 1)]}), 422, f"has {MAX_LENGTH + 1} characters"),
    "malformed JSON": ('{"texts": ["a"', 422, "is not valid JSON"),
    "empty body": ("", 422, "is not valid JSON"),
    "not an object": ("[1, 2]", 422, "body: expected a JSON object"),
    "texts not a list": ('{"texts": "abc"}', 422, "texts: Input should be a valid list"),
    "a number as text": ('{"texts": ["a", 3]}', 422, "texts.1: Input should be a valid string"),
    "misspelt key": ('{"text": ["a"]}', 422, "texts: Field required; text: Extra inputs are not permitted"),
    "bad tags": ('{"texts": ["a"], "contexts": [{"image_tags": "dog"}]}', 422, "contexts[0]: Doc._.image_tags must"),
    "score out of range": ('{"texts": ["a"], "contexts": [{"image_tags": [["dog", 2]]}]}', 422, "not a number in [0"),
    "contexts length": ('{"texts": ["a", "b"], "contexts": [null]}', 422, "contexts has 1 entries for 2 texts"),
    "image in JSON": ('{"texts": ["a"], "contexts": [{"image": "x.jpg"}]}', 422, "never fetches URLs"),
}


@pytest.mark.parametrize("body,status,message", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_clear_4xx(served, body, status, message):
    got_status, data = request(served["url"] + "/ents", body.encode("utf8"))
    assert got_status == status, data
    assert message in data["error"]
    assert "Traceback" not in data["error"]
    if status == 422 and "shape" in data["error"]:
        assert 'Expected {"texts": ["text", ...]' in data["error"]


def test_chunked_body_over_the_limit_is_a_413(served):
    # No Content-Length: the limit is counted while the body streams in.
    host, port = served["url"].removeprefix("http://").split(":")
    body = json.dumps({"texts": ["字" * 7000]}).encode("utf8")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        head = f"POST /ents HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        conn.sendall((head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode())
        for start in range(0, len(body), 4096):
            chunk = body[start : start + 4096]
            try:
                conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except OSError:  # the server may answer and close before the rest
                break
        else:
            conn.sendall(b"0\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"larger than 20,000 bytes" in reply


def test_health_and_meta(served):
    status, health = request(served["url"] + "/health", method="GET")
    assert status == 200 and health["status"] == "ok" and isinstance(health["pid"], int)
    status, meta = request(served["url"] + "/meta", method="GET")
    assert status == 200
    nlp = served["nlp"]
    assert meta["components"] == ["lexner_tagger", "multimodal_entity_ruler"]
    assert meta["labels_by_component"]["lexner_tagger"] == sorted(nlp.get_pipe("lexner_tagger").labels)
    assert set(meta["labels"]) == {"PER", "ORG", "LOC", "PRODUCT", "NUM", "ANIMAL"}
    assert meta["lexicon_size"] == {"lexner_tagger": 10}
    assert meta["limits"] == {"max_body_bytes": MAX_BODY_BYTES, "max_texts": MAX_TEXTS, "max_length": MAX_LENGTH}
    assert meta["image_context"]["tags"] is True
    assert meta["image_context"]["upload"] is HAS_CLIP
    assert meta["image_context"]["clip_tags"] == (CLIP_TAGS if HAS_CLIP else [])


def test_concurrent_requests_equal_offline(served):
    nlp = served["nlp"]
    chars = "张三李四王五在北京大学工作去了上海南京市长江大桥很长腾讯公司的工程师旺财 Apple Store 123"
    rnd = random.Random(0)
    texts = ["".join(rnd.choice(chars) for _ in range(rnd.randint(0, 40))) for _ in range(60)]
    expected = {t: offline(nlp, t) for t in texts}
    n_threads, per_thread = 8, 6
    barrier = threading.Barrier(n_threads)
    failures: List[str] = []

    def client(k: int) -> None:
        local = random.Random(k)
        barrier.wait()
        for _ in range(per_thread):
            batch = local.sample(texts, local.randint(1, 5))
            status, data = post_json(served["url"] + "/ents", {"texts": batch})
            if status != 200:
                failures.append(f"{status}: {data}")
                continue
            for text, doc in zip(batch, data["docs"]):
                if doc["ents"] != expected[text]:
                    failures.append(f"{text!r}: served {doc['ents']}, offline {expected[text]}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


MARKS_JS = (
    "Array.from(document.querySelectorAll('#result > div')).map(block => Array.from("
    "block.querySelectorAll('mark.entity')).map(m => [m.firstChild.textContent.trim(), "
    "m.querySelector('span').textContent.trim()]))"
)


def test_page_in_chromium(served, tmp_path):
    chromium = require_chromium()
    text = "旺财和张三在北京大学工作。"
    nlp = served["nlp"]
    with Browser(chromium, width=900, height=560) as page:
        page.navigate(served["url"] + "/")
        assert page.evaluate("document.querySelector('#tags') !== null")
        page.type_into("#text", text)
        page.type_into("#tags", "dog:0.93")
        page.click("#run")
        page.wait_for("document.querySelector('#result').dataset.state === 'done'")
        with_dog, without = page.evaluate(MARKS_JS)
        headings = page.evaluate("Array.from(document.querySelectorAll('#result h2')).map(h => h.textContent)")
        target = SCREENSHOT if os.environ.get("LEXNER_WRITE_SCREENSHOTS") == "1" else tmp_path / "serve.png"
        page.screenshot(target)
        errors = page.errors()
    assert headings == ["With the image context", "Without image context"]
    assert with_dog == [[e["text"], e["label"]] for e in offline(nlp, text, tags=[("dog", 0.93)])]
    assert without == [[e["text"], e["label"]] for e in offline(nlp, text)]
    assert ["旺财", "ANIMAL"] in with_dog and ["旺财", "PER"] in without
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert errors == []


@pytest.mark.skipif(not HAS_CLIP, reason="the CLIP getter needs transformers")
def test_page_uploads_an_image_in_chromium(served, tmp_path):
    import numpy
    from PIL import Image

    chromium = require_chromium()
    image_path = tmp_path / "photo.png"
    Image.fromarray((numpy.random.default_rng(1).random((40, 48, 3)) * 255).astype("uint8")).save(image_path)
    text = "旺财和张三在北京大学工作。"
    with Browser(chromium) as page:
        page.navigate(served["url"] + "/")
        page.type_into("#text", text)
        page.set_files("#image", [image_path])
        page.click("#run")
        page.wait_for("document.querySelector('#result').dataset.state === 'done'")
        marks = page.evaluate(MARKS_JS)
        shown_tags = page.evaluate("document.querySelector('#result .tags').textContent")
        errors = page.errors()
    nlp = served["nlp"]
    doc = nlp.make_doc(text)
    doc.user_data["image"] = Image.open(image_path).convert("RGB")
    doc = nlp(doc)
    assert marks == [[[e.text, e.label_] for e in doc.ents], [[e["text"], e["label"]] for e in offline(nlp, text)]]
    assert shown_tags.startswith("image tags: " + doc._.image_tags[0][0])
    assert errors == []


def test_render_escapes_the_text(served):
    status, data = post_json(served["url"] + "/render", {"texts": ["<b>张三</b>"]})
    assert status == 200
    assert "<b>" not in data["html"] and "&lt;" in data["html"]
    assert data["docs"][0]["ents"] == offline(served["nlp"], "<b>张三</b>")


def test_cli_says_how_to_install_the_serve_extra(monkeypatch):
    from spacy_lexner.cli import app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi raises ImportError
    result = CliRunner().invoke(app, ["serve", "training/model-best"])
    assert result.exit_code == 1
    assert 'pip install "spacy-lexner[serve]"' in result.output


def test_cli_refuses_a_directory_that_is_no_pipeline(tmp_path):
    from spacy_lexner.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert result.exit_code == 1
    assert "has no config.cfg" in result.output


@Language.component("serve_test_explode")
def explode(doc):
    if "boom" in doc.text:
        raise RuntimeError("secret internal detail")
    return doc


def test_unexpected_error_is_a_short_500_and_logged(caplog):
    # uvicorn in a thread, serving a pipeline with a component that fails
    # (log_config=None: uvicorn's dictConfig would remove caplog's handler).
    import uvicorn

    from spacy_lexner.cli.serve import ServeSettings, Service, create_app

    nlp = spacy.blank("zh")
    nlp.add_pipe("serve_test_explode")
    app = create_app(service=Service(nlp, ServeSettings(model="in-memory", torch_threads=None)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until_up(f"http://127.0.0.1:{port}", None, None, timeout=30)
        status, data = post_json(f"http://127.0.0.1:{port}/ents", {"texts": ["ok", "boom"]})
        assert status == 500
        assert data == {"error": "Internal server error; the server's log has the details."}
        assert "secret internal detail" in caplog.text and "Traceback" in caplog.text
        assert post_json(f"http://127.0.0.1:{port}/ents", {"texts": ["ok"]})[0] == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_failing_request_does_not_fail_its_batch():
    """The pipeline thread batches concurrent requests into one nlp.pipe
    call; when that call fails, each request is rerun alone, so only the
    request with the failing text gets the error."""
    from concurrent.futures import Future

    from spacy_lexner.cli.serve import EntsRequest, PipelineBatcher, ServeSettings, Service

    nlp = spacy.blank("zh")
    nlp.add_pipe("serve_test_explode")
    service = Service(nlp, ServeSettings(model="in-memory", torch_threads=None))
    batcher = PipelineBatcher(service)
    jobs = []
    for texts in (["好", "ok"], ["boom"], ["也好"]):
        request = EntsRequest(texts=texts)
        jobs.append((service.make_docs(request, {}), request, Future()))
    batcher._process(jobs)
    assert [d.text for d in jobs[0][2].result()] == ["好", "ok"]
    assert isinstance(jobs[1][2].exception(), RuntimeError)
    assert [d.text for d in jobs[2][2].result()] == ["也好"]
