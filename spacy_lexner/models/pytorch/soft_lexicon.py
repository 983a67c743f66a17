"""The torch side of the SoftLexicon input layer."""

import torch
from torch import nn

N_SETS = 4  # SoftLexicon's B, M, E, S


class SoftLexiconEmbedding(nn.Module):
    """Character (+ bigram) embeddings concatenated with SoftLexicon features.

    Each of the B/M/E/S sets of a character becomes the weighted sum of its
    words' vectors (word embedding and word-type embedding), with the weights
    4 * z(w) / Z from Ma et al. (2020) computed in the featurizer, plus a flag
    for an empty set. Hashed ids are summed over two seeds, as in thinc's
    HashEmbed.
    """

    def __init__(
        self,
        *,
        n_char_rows: int,
        char_width: int,
        n_bigram_rows: int,
        bigram_width: int,
        n_word_rows: int,
        word_width: int,
        n_type_rows: int,
        type_width: int,
        dropout: float,
        word_dropout: float = 0.0,
        sparse_updates: bool = False,
    ) -> None:
        super().__init__()
        # sparse: the tables get row gradients, stepped by lazy_adam.
        self.char = nn.Embedding(n_char_rows, char_width, sparse=sparse_updates)
        self.bigram = nn.Embedding(n_bigram_rows, bigram_width, sparse=sparse_updates) if bigram_width else None
        self.word = nn.Embedding(n_word_rows, word_width, sparse=sparse_updates) if word_width else None
        self.word_type = (
            nn.Embedding(n_type_rows, type_width, sparse=sparse_updates) if word_width and type_width else None
        )
        self.word_width = word_width
        self.type_width = type_width if self.word_type is not None else 0
        self.dropout = nn.Dropout(dropout)
        self.word_dropout = word_dropout
        for table in (self.char, self.bigram, self.word, self.word_type):
            if table is not None:
                nn.init.normal_(table.weight, std=0.1)

    @property
    def lexicon_width(self) -> int:
        if self.word is None:
            return 0
        return N_SETS * (self.word_width + self.type_width + 1)

    def forward(
        self,
        lengths: torch.Tensor,
        char_rows: torch.Tensor,
        bigram_rows: torch.Tensor,
        lex_index: torch.Tensor,
        lex_word_rows: torch.Tensor,
        lex_type_rows: torch.Tensor,
        lex_weights: torch.Tensor,
        empty_sets: torch.Tensor,
    ) -> torch.Tensor:
        parts = [self.char(char_rows).sum(dim=1)]
        if self.bigram is not None:
            parts.append(self.bigram(bigram_rows).sum(dim=1))
        if self.word is not None:
            parts.append(self._soft_lexicon(char_rows.shape[0], lex_index, lex_word_rows, lex_type_rows, lex_weights))
            parts.append(empty_sets)
        flat = self.dropout(torch.cat(parts, dim=1))
        return _pad(flat, lengths)

    def _soft_lexicon(
        self,
        n_chars: int,
        lex_index: torch.Tensor,
        lex_word_rows: torch.Tensor,
        lex_type_rows: torch.Tensor,
        lex_weights: torch.Tensor,
    ) -> torch.Tensor:
        vectors = self.word(lex_word_rows).sum(dim=1)
        if self.training and self.word_dropout > 0:
            # Hide whole word vectors so the tagger also learns to use the
            # (type, length) vector, which is all an unseen word may have.
            keep = torch.rand(vectors.shape[0], 1, device=vectors.device) >= self.word_dropout
            vectors = vectors * keep
        if self.word_type is not None:
            vectors = torch.cat([vectors, self.word_type(lex_type_rows)], dim=1)
        cells = vectors.new_zeros((n_chars * N_SETS, vectors.shape[1]))
        cells.index_add_(0, lex_index, vectors * lex_weights.unsqueeze(1))
        return cells.view(n_chars, N_SETS * vectors.shape[1])


def _pad(flat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[n_chars, D] packed by lengths -> [n_texts, max_len, D], zero padded."""
    n_texts = lengths.shape[0]
    max_len = int(lengths.max()) if n_texts else 0
    padded = flat.new_zeros((n_texts, max_len, flat.shape[1]))
    if flat.shape[0]:
        positions = torch.arange(max_len, device=flat.device).unsqueeze(0)
        mask = positions < lengths.unsqueeze(1)
        padded[mask] = flat
    return padded
