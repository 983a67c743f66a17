"""A tiny random Chinese-CLIP model and processor saved in a temp dir, so the
clip image-context getter runs its real code path offline."""

from pathlib import Path

from .tiny_bert import SPECIAL_TOKENS, jieba_characters


def make_tiny_chinese_clip(directory: Path) -> Path:
    from transformers import (
        BertTokenizerFast,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    directory.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + sorted(set(jieba_characters(2000)) | {chr(c) for c in range(97, 123)})
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf8")
    config = ChineseCLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        },
        vision_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    ChineseCLIPModel(config).save_pretrained(str(directory))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    image_processor = ChineseCLIPImageProcessor(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
    ChineseCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(str(directory))
    return directory
