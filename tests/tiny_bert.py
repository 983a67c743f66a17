"""A tiny random BERT saved in a temp dir: the real spacy-transformers code
path, with no download. The vocab is the most frequent characters of jieba's
bundled dictionary plus ASCII letters and digits."""

from collections import Counter
from pathlib import Path
from typing import List

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def jieba_characters(limit: int = 3000) -> List[str]:
    from spacy_lexner.lexicon.lexicon import jieba_dict_path

    counts: Counter = Counter()
    with open(jieba_dict_path(), encoding="utf8") as f:
        for line in f:
            word = line.split(" ", 1)[0]
            counts.update(word)
    return [char for char, _ in counts.most_common(limit)]


def make_tiny_bert(directory: Path, hidden: int = 64, layers: int = 2) -> Path:
    """Write config, weights and vocab of a random BERT to directory."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    ascii_tokens = [chr(c) for c in range(33, 127)]
    vocab = SPECIAL_TOKENS + sorted(set(ascii_tokens + jieba_characters()) - set(SPECIAL_TOKENS))
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf8")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(directory))
    BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=False).save_pretrained(str(directory))
    return directory
