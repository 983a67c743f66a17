"""Fusing SoftLexicon character features with a token-vector layer
(a spacy-transformers TransformerListener, or any tok2vec).

    lattice.docs ──tok2vec──▶ [tokens, T] per doc ──copy to each char of the token──▶ [chars, T]
    lattice ──SoftLexiconEmbed──▶ [chars, L]
    concat ──Linear──▶ [chars, width]  (padded: [batch, chars, width])

The transformer output is wordpiece-aligned per token by spacy-transformers'
pooling; a token's vector is then given to each of its characters, so the
tagger still tags characters (and works on jieba-segmented docs). Whitespace
outside tokens gets a zero vector.
"""

from typing import Any, Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Linear, Model
from thinc.types import Floats2d

from ..lexicon.lattice import Lattice
from .types import Embedded


@registry.architectures("spacy-lexner.TokenVectorSoftLexiconEmbed.v1")
def build_token_vector_soft_lexicon_embed(
    tok2vec: Model[List[Doc], List[Floats2d]],
    lexicon_embed: Model[Lattice, Embedded],
    width: int = 256,
) -> Model[Lattice, Embedded]:
    """SoftLexicon features concatenated with token vectors and projected.

    tok2vec: per-token vectors, e.g. spacy-transformers.TransformerListener.v1.
    lexicon_embed: spacy-lexner.SoftLexiconEmbed.v2 (or .v1).
    width: output width of the projection.

    The tagger feeds this layer whole pipeline docs (no windows), since a
    listener must see the docs its upstream component processed.
    """
    projection = Linear(nO=width)
    return Model(
        "token_vector_soft_lexicon_embed",
        _forward,
        init=_init,
        layers=[tok2vec, lexicon_embed, projection],
        refs={"tok2vec": tok2vec, "lexicon_embed": lexicon_embed, "projection": projection},
        dims={"nO": width},
        attrs={"needs_pipeline_docs": True},
    )


def _init(model: Model, X: Optional[Lattice] = None, Y: Any = None) -> None:
    tok2vec, lexicon_embed, projection = model.layers
    tok2vec.initialize(X=list(X.docs) if X is not None and X.docs is not None else None)
    lexicon_embed.initialize(X=X)
    # A listener's width is often unknown until its upstream transformer has
    # run, so the projection's nI is set on the first forward pass instead
    # (or restored with the weights when a trained pipeline is loaded).
    if projection.has_dim("nI"):
        projection.initialize()


def _char_to_token(doc: Doc) -> numpy.ndarray:
    """Index of the token that covers each char of doc.text, or -1 (whitespace)."""
    index = numpy.full((len(doc.text),), -1, dtype="int64")
    for token in doc:
        index[token.idx : token.idx + len(token.text)] = token.i
    return index


def _forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[Embedded, Callable]:
    tok2vec, lexicon_embed, projection = model.layers
    ops = model.ops
    if lattice.docs is None:
        raise ValueError("spacy-lexner.TokenVectorSoftLexiconEmbed.v1 reads Docs: build the lattice with docs=.")
    docs = list(lattice.docs)
    token_vectors, bp_tok2vec = tok2vec(docs, is_train)
    (lex, lengths, _), bp_lex = lexicon_embed(lattice, is_train)
    batch, max_len, lex_width = lex.shape
    # An empty doc's token array may come back as (0, 0), so take the widest.
    trf_width = max((v.shape[1] for v in token_vectors), default=0)
    if not projection.has_dim("nI") and trf_width == 0:
        # Nothing to infer the width from yet (only empty docs were seen).
        return Embedded(ops.alloc3f(batch, max_len, model.get_dim("nO")), lengths, lattice), lambda d: lattice
    char_index = [_char_to_token(doc) for doc in docs]
    chars = ops.alloc3f(batch, max_len, trf_width)
    for i, (vectors, index) in enumerate(zip(token_vectors, char_index)):
        inside = numpy.nonzero(index >= 0)[0]
        if len(inside):
            chars[i, ops.asarray1i(inside)] = vectors[ops.asarray1i(index[inside])]
    fused = ops.xp.concatenate([lex, chars], axis=-1).reshape(batch * max_len, lex_width + trf_width)
    if not projection.has_dim("nI"):
        projection.set_dim("nI", lex_width + trf_width)
        projection.initialize()
    projected, bp_projection = projection(fused, is_train)
    output = projected.reshape(batch, max_len, -1)

    def backprop(d_padded: Tuple) -> Lattice:
        d_output = d_padded[0]
        d_fused = bp_projection(d_output.reshape(batch * max_len, -1)).reshape(batch, max_len, -1)
        bp_lex((ops.xp.ascontiguousarray(d_fused[..., :lex_width]), lengths))
        d_chars = d_fused[..., lex_width:]
        d_tokens = []
        for i, (vectors, index) in enumerate(zip(token_vectors, char_index)):
            d_vectors = ops.alloc2f(*vectors.shape)
            inside = numpy.nonzero(index >= 0)[0]
            if len(inside):
                ops.scatter_add(d_vectors, ops.asarray1i(index[inside]), d_chars[i, ops.asarray1i(inside)])
            d_tokens.append(d_vectors)
        bp_tok2vec(d_tokens)
        return lattice

    return Embedded(output, lengths, lattice), backprop
