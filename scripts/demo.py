"""Print the entities a trained pipeline finds in a few sentences, and render
them with displaCy.

    python scripts/demo.py training/default/model-best --html demo/default.html --jsonl demo/default.jsonl
"""

import json
import warnings
from pathlib import Path
from typing import List, Optional

import spacy
import typer
from spacy import displacy
from wasabi import msg

# The first two are the examples from the NER lecture; the others are
# Weibo-style sentences with person, place and organisation names.
SENTENCES = [
    "2017苹果秋季新品发布会于美国当地时间9月12日上午10点在Apple Park新总部的史蒂夫·乔布斯剧院举行苹果新品发布会。"
    "此次发布会由苹果公司CEO蒂姆·库克主持。",
    "南京市长江大桥",
    "周末和张伟去上海看了姚明的比赛，顺便参观了复旦大学。",
    "刚看到马云说阿里巴巴要在杭州建新总部，我妈妈说她早就知道了。",
]


def main(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    html_path: Optional[Path] = typer.Option(None, "--html", help="Write a displaCy page here"),
    jsonl_path: Optional[Path] = typer.Option(None, "--jsonl", help="Write text and entities here"),
    texts: Optional[List[str]] = typer.Option(
        None, "--text", help="Sentence to use instead of the built-in ones (repeatable)"
    ),
) -> None:
    nlp = spacy.load(model)
    docs = list(nlp.pipe(texts or SENTENCES))
    records = []
    for doc in docs:
        msg.divider(doc.text[:40] + ("..." if len(doc.text) > 40 else ""))
        ents = [(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents]
        if ents:
            msg.table(ents, header=("entity", "label", "start", "end"), aligns=("l", "l", "r", "r"))
        else:
            msg.text("(no entities)")
        records.append({"text": doc.text, "ents": [list(e) for e in ents]})
    if jsonl_path is not None:
        jsonl_path.parent.mkdir(parents=True, exist_ok=True)
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        jsonl_path.write_text("".join(lines), encoding="utf-8")
    if html_path is not None:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        # W006 (a doc without entities) is expected here: the table above says so.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\[W006\]")
            html = displacy.render(docs, style="ent", page=True, jupyter=False)
        html_path.write_text(html, encoding="utf-8")
        msg.good(f"displaCy page: {html_path}")


if __name__ == "__main__":
    typer.run(main)
