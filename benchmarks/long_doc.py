"""Peak memory and time of one very long document through lexner_tagger.

    python benchmarks/long_doc.py                      # 1,000,000 chars, default-size model
    python benchmarks/long_doc.py --chars 200000 --model training/resume/model-best

The document is processed in a fresh child process (this script re-runs
itself with --child), which reports JSON on its last line:
- baseline_rss_mb: the child's peak RSS after loading the pipeline and
  building the Doc (spaCy's Doc costs memory per token on its own);
- peak_rss_mb: the child's peak RSS after the pipeline ran on the Doc;
- growth_mb: peak - baseline, what tagging the document added;
- unbounded_estimate_mb: what a single padded sequence of the whole text
  would need just for the embedding output and the BiLSTM output
  (chars * (embed width + encoder width) * 4 bytes), i.e. without windows;
- seconds: wall time of nlp's pipeline on the Doc.

Without --model the pipeline is lexner_tagger with the default architecture
(widths 50, BiLSTM 200, as in configs/resume.cfg), initialised but untrained,
and a 2,000-word file lexicon built from the text's own bigrams: speed and
memory do not depend on the weights.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SENTENCES = [
    "张三在北京大学工作。",
    "李四去了上海，见到了王五！",
    "南京市长江大桥于1968年建成；",
    "iPhone 14在2022年9月发布\n",
]


def make_text(n_chars: int) -> str:
    """Sentences, plus every 20th block a 1,000-char run without a sentence end
    (so hard, overlapping windows are exercised too)."""
    parts, total, i = [], 0, 0
    while total < n_chars:
        part = ("腾讯公司的工程师" * 125) if i % 20 == 19 else SENTENCES[i % len(SENTENCES)]
        parts.append(part)
        total += len(part)
        i += 1
    return "".join(parts)[:n_chars]


def current_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_default_pipeline(text: str):
    import spacy
    from spacy.training import Example
    from thinc.api import fix_random_seed

    from spacy_lexner import Lexicon

    # Seeded: the untrained weights decide whether any entity comes out
    # (tests/test_long_docs.py checks that some do); unseeded, a CI run got none.
    fix_random_seed(0)
    nlp = spacy.blank("zh")
    nlp.max_length = max(nlp.max_length, len(text))
    tagger = nlp.add_pipe("lexner_tagger")
    words = sorted({text[i : i + 2] for i in range(0, min(len(text), 20000), 3)})[:2000]
    doc = nlp.make_doc("张三在北京大学工作。")
    example = Example.from_dict(doc, {"entities": [(0, 2, "PER"), (3, 7, "ORG")]})
    nlp.initialize(lambda: [example])
    tagger.set_lexicon(Lexicon([(w, 10.0, "n") for w in words]))
    return nlp


def child(args: argparse.Namespace) -> None:
    import spacy

    text = make_text(args.chars)
    if args.model:
        nlp = spacy.load(args.model)
        nlp.max_length = max(nlp.max_length, len(text))
    else:
        nlp = build_default_pipeline(text)
    nlp("暖身。")  # lazy allocations (torch, thinc) before the baseline
    doc = nlp.make_doc(text)
    baseline = current_peak_mb()
    start = time.perf_counter()
    for _, proc in nlp.pipeline:
        doc = proc(doc)
    seconds = time.perf_counter() - start
    peak = current_peak_mb()
    assert doc.text == text
    tagger = nlp.get_pipe("lexner_tagger")
    embed_width = tagger.model.get_ref("embed").get_dim("nO")
    hidden = tagger.model.get_ref("encoder").get_dim("nO")
    unbounded = len(text) * (embed_width + hidden) * 4 / 2**20
    print(
        json.dumps(
            {
                "chars": len(text),
                "ents": len(doc.ents),
                "seconds": round(seconds, 2),
                "baseline_rss_mb": round(baseline, 1),
                "peak_rss_mb": round(peak, 1),
                "growth_mb": round(peak - baseline, 1),
                "unbounded_estimate_mb": round(unbounded, 1),
                "window_size": tagger.window_size,
                "batch_chars": tagger.batch_chars,
            }
        )
    )


def run(chars: int, model: str = "", threads: int = 1) -> dict:
    """Run the measurement in a fresh process and return its JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--chars", str(chars), "--threads", str(threads)]
    if model:
        cmd += ["--model", model]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--model", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        child(args)
    else:
        print(json.dumps(run(args.chars, args.model, args.threads), indent=1))


if __name__ == "__main__":
    main()
