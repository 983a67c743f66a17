"""`spacy-lexner annotate`: formats, rejects, long texts, and a run killed at
any point and resumed writing the same bytes as an uninterrupted one; the
Ray engine (a real local Ray, no mocks) writing the local engine's bytes,
also when a worker dies mid-job.

The killed runs are the real CLI in a subprocess, stopped by kill -9 or by
the test-only $SPACY_LEXNER_ANNOTATE_CRASH hook (os._exit at a named point);
the resumes run in this process (run_annotate), which saves a CLI start.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_lexner.annotate import AnnotateError, AnnotateSettings, run_annotate
from spacy_lexner.annotate.core import CRASH_ENV, split_text
from spacy_lexner.cli.app import app

from .tiny_pipelines import lexner_pipeline, write_lexicon
from .util import REPO_ROOT, TRAIN_DATA

TEXTS = [text for text, _ in TRAIN_DATA] + ["今天天气不错", "张三和李四在上海见面。王五去了南京市。"]
N_RECORDS = 3000


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("annotate") / "model"
    lexner_pipeline(write_lexicon(path.parent / "lexicon.txt")).to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def nlp(model) -> Language:
    return spacy.load(model)


def write_corpus(path: Path, n: int = N_RECORDS, bad: bool = True) -> Path:
    """n records (texts of 6-60 chars), a blank line, and with bad=True four
    records that must be rejected, spread through the file."""
    lines = [
        json.dumps({"id": f"r{i}", "text": TEXTS[i % len(TEXTS)] * (1 + i % 3), "n": i}, ensure_ascii=False).encode()
        for i in range(n)
    ]
    if bad:
        lines.insert(5, b'{"id": "enc", "text": "\xe5\xbc\xa0\xff"}')  # not UTF-8
        lines.insert(n // 2, b"{not json")
        lines.insert(n // 3, b'{"id": "num", "text": 42}')
        lines.insert(n - 10, b'{"text": "no id"}')
        lines.insert(7, b"")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def settings(model: str, input_path: Path, output: Path, **kwargs) -> AnnotateSettings:
    kwargs.setdefault("shard_size", 200)
    kwargs.setdefault("progress", False)
    return AnnotateSettings(model=model, input=str(input_path), output=str(output), **kwargs)


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.jsonl")


@pytest.fixture(scope="module")
def reference(model, corpus, tmp_path_factory) -> Path:
    """An uninterrupted local run over the corpus: the bytes every other run must write."""
    out = tmp_path_factory.mktemp("reference") / "out.jsonl"
    run_annotate(settings(model, corpus, out))
    return out


# -- the local engine -----------------------------------------------------------


def test_output_is_one_record_per_input_with_the_pipelines_entities(reference, nlp):
    records = read_jsonl(reference)
    assert [r["id"] for r in records] == [f"r{i}" for i in range(N_RECORDS)]
    for i in (0, 1, 6, 1234, N_RECORDS - 1):
        doc = nlp(TEXTS[i % len(TEXTS)] * (1 + i % 3))
        expected = [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents]
        assert records[i]["ents"] == expected
    assert any(records[i]["ents"] for i in range(5))
    manifest = json.loads((reference.parent / "out.jsonl.parts" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["summary"]["records"] == N_RECORDS + 4
    # The shard files are gone; the manifest stays, so a rerun has nothing to do.
    assert sorted(p.name for p in (reference.parent / "out.jsonl.parts").iterdir()) == ["manifest.json"]


def test_bad_records_go_to_the_rejects_file_with_file_and_line(reference, corpus):
    rejects = read_jsonl(reference.parent / "out.rejects.jsonl")
    reasons = {r["line"]: r["reason"] for r in rejects}
    assert len(rejects) == 4
    assert all(r["source"] == str(corpus) and r["reason"].startswith(f"{corpus}:{r['line']}: ") for r in rejects)
    assert "not UTF-8" in reasons[6] and "re-encode" in reasons[6]
    assert any("not valid JSON" in reason for reason in reasons.values())
    assert any("is a JSON int, not a string" in reason for reason in reasons.values())
    assert any("no 'id' field" in reason and "--id-field ''" in reason for reason in reasons.values())


def test_cli_summary_and_rerun_has_nothing_to_do(model, corpus, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    args = ["annotate", model, str(corpus), str(out), "--shard-size", "500", "--batch-size", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"Annotated {N_RECORDS:,} of {N_RECORDS + 4:,} records" in result.output
    assert "PER" in result.output and "Rejected 4 record(s)" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "already complete" in again.output


def test_n_process_2_and_other_batch_sizes_write_the_same_bytes(model, corpus, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    run_annotate(settings(model, corpus, out, n_process=2, batch_size=7))
    assert out.read_bytes() == reference.read_bytes()
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == (reference.parent / "out.rejects.jsonl").read_bytes()


def cli(model, corpus, out, env=None, **popen):
    command = [sys.executable, "-m", "spacy_lexner", "annotate", model, str(corpus), str(out), "--shard-size", "200"]
    return subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, **popen)


@pytest.mark.parametrize(
    "point",
    [
        "record:300",  # inside the second shard
        "shard-annotated:4",  # shard 4 annotated, nothing of it written
        "shard-output-written:3",  # shard 3's output renamed, its rejects and .done not
        "shard-done:16",  # after the last shard, before the concatenation
        "output-written:1",  # OUTPUT renamed, the manifest not marked complete
    ],
)
def test_killed_at_any_point_resumes_to_the_same_bytes(model, corpus, reference, tmp_path, point):
    out = tmp_path / "out.jsonl"
    crashed = cli(model, corpus, out, env={CRASH_ENV: point})
    assert crashed.wait(timeout=60) == 137, f"the run did not stop at {point}"
    parts = tmp_path / "out.jsonl.parts"
    n_done = len(list(parts.glob("*.done.json")))
    summary = run_annotate(settings(model, corpus, out))
    assert summary.shards_resumed == n_done and summary.records == N_RECORDS + 4
    assert out.read_bytes() == reference.read_bytes()
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == (reference.parent / "out.rejects.jsonl").read_bytes()
    assert not list(parts.glob("*.tmp-*"))


def test_kill_9_mid_run_then_resume(model, corpus, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    process = cli(model, corpus, out, start_new_session=True)
    done = tmp_path / "out.jsonl.parts" / "shard-000002.done.json"
    deadline = time.monotonic() + 60
    while not done.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert not out.exists()
    run_annotate(settings(model, corpus, out))
    assert out.read_bytes() == reference.read_bytes()


def test_resume_with_other_arguments_or_changed_input_is_refused(model, tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", n=50, bad=False)
    out = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    # A manifest as a killed run leaves it (written before any shard).
    from spacy_lexner.annotate.job import Job

    job = Job(settings(model, corpus, out, shard_size=10))
    job.start()
    with pytest.raises(AnnotateError, match=r"settings\.text_field was 'text', now 'body'.*delete .*out\.jsonl\.parts"):
        run_annotate(settings(model, corpus, out, shard_size=10, text_field="body"))
    with pytest.raises(AnnotateError, match="shard_size was 10, now 20"):
        run_annotate(settings(model, corpus, out, shard_size=20))
    with corpus.open("a", encoding="utf-8") as f:
        f.write('{"id": "new", "text": "李四"}\n')
    with pytest.raises(AnnotateError, match="the input files changed"):
        run_annotate(settings(model, corpus, out, shard_size=10))


def test_output_that_is_an_input_or_an_unknown_file_is_refused(model, tmp_path):
    (tmp_path / "data").mkdir()
    corpus = write_corpus(tmp_path / "data" / "in.jsonl", n=5, bad=False)
    with pytest.raises(AnnotateError, match="is an input file"):
        run_annotate(settings(model, corpus, corpus))
    with pytest.raises(AnnotateError, match="inside the input directory"):
        run_annotate(settings(model, tmp_path / "data", tmp_path / "data" / "out.jsonl"))
    precious = tmp_path / "precious.jsonl"
    precious.write_text("mine\n")
    with pytest.raises(AnnotateError, match="never overwrites a file it did not write"):
        run_annotate(settings(model, corpus, precious))
    assert precious.read_text() == "mine\n" and corpus.read_bytes().count(b"\n") == 5


def test_long_texts_rejected_or_split_on_sentence_ends(model, nlp, tmp_path):
    long_text = "张三在北京大学工作。李四去了上海。王五是腾讯公司的工程师。" * 4
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(
        json.dumps({"id": 1, "text": "李四去了上海。"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": 2, "text": long_text}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    run_annotate(settings(model, corpus, tmp_path / "rejected.jsonl", max_length=40))
    assert [r["id"] for r in read_jsonl(tmp_path / "rejected.jsonl")] == [1]
    (reject,) = read_jsonl(tmp_path / "rejected.rejects.jsonl")
    assert reject["id"] == 2 and "over nlp.max_length (40); pass --long-texts split" in reject["reason"]

    run_annotate(settings(model, corpus, tmp_path / "split.jsonl", max_length=40, long_texts="split"))
    split = read_jsonl(tmp_path / "split.jsonl")[1]
    # Offsets point into the whole text, and each piece's entities are nlp's on that piece.
    expected = []
    for offset, chunk in split_text(long_text, 40):
        expected += [(e.start_char + offset, e.end_char + offset, e.label_) for e in nlp(chunk).ents]
    assert [(e["start"], e["end"], e["label"]) for e in split["ents"]] == expected
    assert all(long_text[e["start"] : e["end"]] == e["text"] for e in split["ents"]) and split["ents"]


def test_split_text_cuts_after_sentence_ends_and_hard_cuts_long_sentences():
    text = "一二三。四五。六七八九十一二三四五六！end"
    chunks = split_text(text, 8)
    assert "".join(chunk for _, chunk in chunks) == text
    assert all(len(chunk) <= 8 for _, chunk in chunks)
    assert [chunk for _, chunk in chunks][:2] == ["一二三。四五。", "六七八九十一二三"]
    assert all(text[offset : offset + len(chunk)] == chunk for offset, chunk in chunks)


def test_text_parquet_directories_and_globs(model, nlp, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("张三在北京大学工作。\n\n李四去了上海。\n", encoding="utf-8")
    (data / "b.txt").write_text("王五是腾讯公司的工程师", encoding="utf-8")
    run_annotate(settings(model, data, tmp_path / "text.jsonl", keep_fields=True))
    records = read_jsonl(tmp_path / "text.jsonl")
    assert [(r["source"], r["id"], r["fields"]["text"]) for r in records] == [
        (str(data / "a.txt"), 1, "张三在北京大学工作。"),
        (str(data / "a.txt"), 3, "李四去了上海。"),
        (str(data / "b.txt"), 1, "王五是腾讯公司的工程师"),
    ]
    run_annotate(settings(model, str(data / "*.txt"), tmp_path / "glob.jsonl", keep_fields=True))
    assert (tmp_path / "glob.jsonl").read_bytes() == (tmp_path / "text.jsonl").read_bytes()

    texts = [TEXTS[i % len(TEXTS)] for i in range(25)]
    table = pa.table({"doc": [f"d{i}" for i in range(25)], "body": texts})
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=4)
    out = tmp_path / "out.parquet"
    run_annotate(settings(model, tmp_path / "in.parquet", out, text_field="body", id_field="doc", shard_size=3))
    result = pq.read_table(out).to_pylist()
    assert [r["id"] for r in result] == [f"d{i}" for i in range(25)]
    assert [[(e["start"], e["end"], e["label"]) for e in r["ents"]] for r in result] == [
        [(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)
    ]
    with pytest.raises(AnnotateError, match="has no column 'id'.*--id-field ''"):
        run_annotate(settings(model, tmp_path / "in.parquet", tmp_path / "x.parquet", text_field="body"))


@Language.component("annotate_test_raiser")
def _raiser(doc):
    if "炸" in doc.text:
        raise RuntimeError("a component failed on this text")
    return doc


@pytest.mark.parametrize("n_process", [1, 2])
def test_a_text_the_pipeline_fails_on_is_rejected_alone(model, tmp_path, n_process):
    nlp = spacy.load(model)
    nlp.add_pipe("annotate_test_raiser")
    nlp.to_disk(tmp_path / "model")
    corpus = tmp_path / "in.jsonl"
    texts = ["张三在北京大学工作。", "炸了", "李四去了上海。"] * 3
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    run_annotate(settings(str(tmp_path / "model"), corpus, tmp_path / "out.jsonl", batch_size=4, n_process=n_process))
    records = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in records] == [0, 2, 3, 5, 6, 8]
    assert all(r["ents"] for r in records)
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [r["id"] for r in rejects] == [1, 4, 7]
    assert "the pipeline failed (RuntimeError: a component failed on this text)" in rejects[0]["reason"]


# -- the Ray engine -------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_writes_the_local_engines_bytes(ray_runtime, model, corpus, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    summary = run_annotate(settings(model, corpus, out, engine="ray", concurrency=2))
    assert summary.records == N_RECORDS + 4 and summary.rejected == 4
    assert out.read_bytes() == reference.read_bytes()
    assert (tmp_path / "out.rejects.jsonl").read_bytes() == (reference.parent / "out.rejects.jsonl").read_bytes()


def test_ray_worker_killed_mid_job_still_complete_and_duplicate_free(
    ray_runtime, model, corpus, reference, tmp_path, monkeypatch
):
    marker = tmp_path / "killed"
    monkeypatch.setenv("SPACY_LEXNER_ANNOTATE_KILL_ONCE", str(marker))
    out = tmp_path / "out.jsonl"
    run_annotate(settings(model, corpus, out, engine="ray", concurrency=2))
    assert marker.exists(), "no worker was killed"
    ids = [r["id"] for r in read_jsonl(out)]
    assert len(ids) == len(set(ids)) == N_RECORDS
    assert out.read_bytes() == reference.read_bytes()


def test_ray_resumes_a_killed_local_run(ray_runtime, model, corpus, reference, tmp_path):
    out = tmp_path / "out.jsonl"
    crashed = cli(model, corpus, out, env={CRASH_ENV: "record:1100"})
    assert crashed.wait(timeout=60) == 137
    summary = run_annotate(settings(model, corpus, out, engine="ray", concurrency=2))
    assert summary.shards_resumed == 5
    assert out.read_bytes() == reference.read_bytes()
