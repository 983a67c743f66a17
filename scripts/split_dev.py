"""Carve a dev set off the end of a training DocBin.

For corpora without an official dev split (MSRA; CLUENER, whose labelled dev
split is used as the test set). The last N docs become dev so that the split
is deterministic and matches the usual "last N sentences" recipe.

    python scripts/split_dev.py corpus/msra/train-all.spacy corpus/msra/train.spacy corpus/msra/dev.spacy --n-dev 3000
"""

from pathlib import Path
from typing import Tuple

import typer
from spacy.tokens import DocBin
from spacy.vocab import Vocab
from wasabi import msg


def carve_dev(docs: DocBin, n_dev: int) -> Tuple[DocBin, DocBin]:
    """Split `docs` into (train, dev), dev being the last `n_dev` docs.

    docs (DocBin): the full training set.
    n_dev (int): how many docs to move to dev; must leave at least one for train.
    RETURNS (Tuple[DocBin, DocBin]): train and dev.
    """
    # A bare Vocab is enough: the DocBin carries its own strings.
    all_docs = list(docs.get_docs(Vocab()))
    if not 0 < n_dev < len(all_docs):
        raise ValueError(
            f"--n-dev {n_dev} must be between 1 and {len(all_docs) - 1}: the training set has {len(all_docs)} docs"
        )
    cut = len(all_docs) - n_dev
    return (
        DocBin(docs=all_docs[:cut], store_user_data=False),
        DocBin(docs=all_docs[cut:], store_user_data=False),
    )


def main(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Full training .spacy"),
    train_path: Path = typer.Argument(..., dir_okay=False, help="Output train .spacy"),
    dev_path: Path = typer.Argument(..., dir_okay=False, help="Output dev .spacy"),
    n_dev: int = typer.Option(3000, "--n-dev", help="Number of docs (from the end) to use as dev"),
) -> None:
    try:
        train, dev = carve_dev(DocBin().from_disk(input_path), n_dev)
    except ValueError as err:
        msg.fail("Cannot carve a dev set", str(err), exits=1)
    for docbin, path in ((train, train_path), (dev, dev_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        docbin.to_disk(path)
    msg.good(f"Wrote {len(train)} train docs to {train_path} and {len(dev)} dev docs to {dev_path}")


if __name__ == "__main__":
    typer.run(main)
