"""The ``crf_ner`` architecture: token vectors → emission scores → CRF.

    docs ──tok2vec──▶ [tokens, width] per doc ──Linear──▶ [tokens, tags]
         ──pad──▶ emissions[batch, tokens, tags] ──CRF──▶ TagScores

tok2vec is any ``Model[List[Doc], List[Floats2d]]``: an embedded
``spacy.Tok2Vec.v2``, a ``spacy.Tok2VecListener.v1`` or a
``spacy-transformers.TransformerListener.v1``. The CRF itself is the layer
``lexner_tagger`` uses (``models/decoders.py``), kept as the ref "crf"; the
model returns the same TagScores as lexner_tagger's, so both pipes train and
decode through one contract (``models/types.py``).
"""

from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model, chain, with_array, zero_init
from thinc.types import Floats2d, Floats3d

from .decoders import CRFScores, build_crf_layer
from .types import TagScores


@registry.architectures("spacy-lexner.CRFTagger.v1")
def build_crf_tagger(
    tok2vec: Model[List[Doc], List[Floats2d]],
    scheme: str = "BIOES",
    nO: Optional[int] = None,
) -> Model[List[Doc], TagScores]:
    """Token-level BIOES/BIO tagger with a constrained CRF.

    tok2vec: token vectors for each doc (an embedded Tok2Vec or a listener).
    scheme: "BIOES" or "BIO".
    nO: number of tags; inferred from the labels at initialize.
    """
    scorer = with_array(Linear(nO=nO, init_W=zero_init))
    crf = build_crf_layer(scheme)
    return Model(
        "crf_tagger",
        _forward,
        init=_init,
        layers=[chain(tok2vec, scorer), crf],
        refs={"tok2vec": tok2vec, "scorer": scorer, "crf": crf},
        dims={"nO": nO},
        attrs={"scheme": scheme},
    )


def _init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    n_tags = model.get_ref("crf").get_dim("nO")
    model.get_ref("scorer").layers[0].set_dim("nO", n_tags, force=True)
    model.set_dim("nO", n_tags, force=True)
    model.layers[0].initialize(X=X)
    model.layers[1].initialize()


def _forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[TagScores, Callable]:
    scores, backprop_scores = model.layers[0](docs, is_train)
    ops = model.ops
    lengths = ops.asarray1i([len(s) for s in scores])
    n_tags = model.get_dim("nO")
    padded = ops.pad(scores) if scores and max(lengths, default=0) else ops.alloc3f(len(scores), 0, n_tags)

    def backprop(d_scores: Floats3d) -> List[Doc]:
        return backprop_scores([d_scores[i, : int(n)] for i, n in enumerate(lengths)])

    return CRFScores(padded, lengths, model.get_ref("crf")), backprop
