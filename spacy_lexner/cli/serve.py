"""``spacy-lexner serve``: a JSON API and a page to try a pipeline.

Needs the ``serve`` extra (``pip install "spacy-lexner[serve]"``): FastAPI,
uvicorn and python-multipart. Each worker process builds the app with
``create_app``, which loads the pipeline once; uvicorn's ``--workers N``
starts it by the import string ``spacy_lexner.cli.serve:create_app`` and
reads the settings from the ``SPACY_LEXNER_SERVE`` environment variable,
which the CLI sets.

Concurrency: the request body is read and checked on the event loop, the
Docs are made in the worker's thread pool, and one pipeline thread per
worker (``PipelineBatcher``) runs ``nlp.pipe`` over the Docs of every
request waiting at that moment. Requests that arrive together share one
batch, which the tagger runs faster per text than one text at a time, and
``nlp.pipe`` gives the same entities as ``nlp(text)`` for any batch
(docs/reliability.md). CPU throughput beyond one core comes from worker
processes (``--workers``).
"""

import asyncio
import io
import json
import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError
from spacy import displacy
from spacy.language import Language
from spacy.tokens import Doc
from starlette.concurrency import run_in_threadpool

from ..pipeline.entity_ruler import MultimodalEntityRuler
from ..pipeline.image_context import ClipImageContext
from ..util.image_context import set_image_context

ENV_VAR = "SPACY_LEXNER_SERVE"
DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_MAX_TEXTS = 128
# The most texts one nlp.pipe call of the pipeline thread takes from the
# requests waiting; more wait for the next call.
MAX_BATCH_TEXTS = 256
# An uploaded image larger than this (width x height) is refused before its
# pixels are decoded: a small PNG can expand to gigabytes.
MAX_IMAGE_PIXELS = 25_000_000
REQUEST_SHAPE = (
    '{"texts": ["text", ...], "contexts": [{"image_tags": [["dog", 0.9]]}, null, ...]} '
    '("contexts" is optional; one entry per text)'
)
# displaCy's colours, one per label of the pipeline (it knows PERSON, not PER).
PALETTE = ["#7aecec", "#bfeeb7", "#feca74", "#ff9561", "#aa9cfc", "#c887fb", "#9cc9cc", "#ffeb80", "#ff8197", "#e4e7d2"]
INTERNAL_ERROR = "Internal server error; the server's log has the details."
TEMPLATES = Path(__file__).parent / "templates"
logger = logging.getLogger("spacy_lexner.serve")

ASGIApp = Callable[[Dict[str, Any], Callable[[], Awaitable[Dict]], Callable[[Dict], Awaitable[None]]], Awaitable[None]]


@dataclass
class ServeSettings:
    """What one worker needs to build the app (passed to workers as JSON in
    the SPACY_LEXNER_SERVE environment variable).

    model: a pipeline directory or an installed package name.
    max_body_bytes: larger request bodies get a 413.
    max_texts: more texts in one request get a 422.
    max_length: characters per text; None keeps the pipeline's nlp.max_length.
    torch_threads: torch threads per worker; None leaves torch's default.
    """

    model: str
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_texts: int = DEFAULT_MAX_TEXTS
    max_length: Optional[int] = None
    torch_threads: Optional[int] = 1

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> "ServeSettings":
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(
                f"create_app() without settings reads them from ${ENV_VAR}, which is not set. "
                'Start the server with `spacy-lexner serve MODEL`, or set it, e.g. {"model": "training/model-best"}.'
            )
        return cls(**json.loads(raw))


class RequestError(Exception):
    """A bad request: answered with its status and message, never a trace."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _BodyTooLarge(RequestError):
    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than {max_body_bytes:,} bytes (--max-body-bytes). "
            "Send fewer or shorter texts.",
        )


# -- request schema ------------------------------------------------------------


class ContextIn(BaseModel):
    """One text's image context, as in the nlp.pipe(as_tuples=True) context dict."""

    model_config = ConfigDict(extra="forbid")
    # Checked by set_image_context, whose errors say which shapes it takes.
    image_tags: Any = None
    image_embedding: Any = None
    # The name of an uploaded file part (multipart/form-data only).
    image: Optional[StrictStr] = None


class EntsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: List[StrictStr]
    contexts: Optional[List[Optional[ContextIn]]] = None


# -- the pipeline --------------------------------------------------------------


class Service:
    """The loaded pipeline and what the endpoints need to know about it."""

    def __init__(self, nlp: Language, settings: ServeSettings) -> None:
        self.nlp, self.settings = nlp, settings
        if settings.max_length is not None:
            nlp.max_length = settings.max_length
        self.rulers = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, MultimodalEntityRuler)]
        # The CLIP getters read the image from doc.user_data[image_key].
        self.clip_getters = [r.image_context for r in self.rulers if isinstance(r.image_context, ClipImageContext)]
        labels = sorted({label for _, pipe in nlp.pipeline for label in getattr(pipe, "labels", None) or ()})
        self.colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        meta = nlp.meta
        self.pipeline = {
            "name": f"{meta.get('lang', nlp.lang)}_{meta.get('name', 'pipeline')}",
            "version": meta.get("version"),
        }

    def meta(self) -> Dict[str, Any]:
        labels = {name: sorted(pipe.labels) for name, pipe in self.nlp.pipeline if getattr(pipe, "labels", None)}
        lexicons = {
            name: len(pipe.lexicon) for name, pipe in self.nlp.pipeline if getattr(pipe, "lexicon", None) is not None
        }
        return {
            "pipeline": self.pipeline,
            "lang": self.nlp.lang,
            "components": list(self.nlp.pipe_names),
            "labels": sorted({label for names in labels.values() for label in names}),
            "labels_by_component": labels,
            "lexicon_size": lexicons,
            "image_context": {
                "rulers": [r.name for r in self.rulers],
                "tags": bool(self.rulers),
                "upload": bool(self.clip_getters),
                "clip_tags": [tag for getter in self.clip_getters for tag in getter.scorer.tags],
            },
            "limits": {
                "max_body_bytes": self.settings.max_body_bytes,
                "max_texts": self.settings.max_texts,
                "max_length": self.nlp.max_length,
            },
        }

    def check(self, request: EntsRequest, uploads: Dict[str, bytes], multipart: bool) -> None:
        """The limits and the context's shape, before any text is processed."""
        n = len(request.texts)
        if n > self.settings.max_texts:
            raise RequestError(
                422, f"Too many texts: {n} in one request; the limit is {self.settings.max_texts}. Split the request."
            )
        for i, text in enumerate(request.texts):
            if len(text) > self.nlp.max_length:
                raise RequestError(
                    422,
                    f"texts[{i}] has {len(text):,} characters; the limit is {self.nlp.max_length:,} (nlp.max_length). "
                    "Split the text into shorter ones.",
                )
        if request.contexts is not None and len(request.contexts) != n:
            raise RequestError(
                422, f"contexts has {len(request.contexts)} entries for {n} texts; give one per text (null for none)."
            )
        for i, context in enumerate(request.contexts or []):
            if context is None or context.image is None:
                continue
            if not multipart:
                raise RequestError(
                    422,
                    f"contexts[{i}].image names an uploaded file, but the request is not multipart/form-data. "
                    'Upload the image as a file part and send the JSON in the "payload" field; '
                    "the server never fetches URLs or reads its own files.",
                )
            if context.image not in uploads:
                raise RequestError(
                    422,
                    f"contexts[{i}].image is '{context.image}', but no file part has that name; got {sorted(uploads)}.",
                )
            if not self.clip_getters:
                raise RequestError(
                    422,
                    "This pipeline cannot read images: it has no multimodal_entity_ruler with the "
                    "spacy-lexner.clip_image_context.v1 getter. Send image_tags instead.",
                )
            if context.image_tags is not None or context.image_embedding is not None:
                raise RequestError(
                    422,
                    f"contexts[{i}] has both an image and image_tags/image_embedding; the ruler uses given tags "
                    "and never runs CLIP then. Send one of them.",
                )

    def make_doc(self, i: int, text: str, context: Optional[ContextIn], uploads: Dict[str, bytes]) -> Doc:
        """The Doc as offline code gives it to nlp: tags set with
        set_image_context (the ruler then calls no getter), an image put
        where the CLIP getter reads it (doc.user_data[image_key])."""
        doc = self.nlp.make_doc(text)
        if context is None:
            return doc
        try:
            set_image_context(doc, tags=context.image_tags, embedding=context.image_embedding)
        except ValueError as err:
            raise RequestError(422, f"contexts[{i}]: {err}") from None
        if context.image is not None:
            image = _decode_image(uploads[context.image], f"contexts[{i}].image ('{context.image}')")
            for getter in self.clip_getters:
                doc.user_data[getter.image_key] = image
        return doc

    def make_docs(self, request: EntsRequest, uploads: Dict[str, bytes]) -> List[Doc]:
        contexts = request.contexts or [None] * len(request.texts)
        return [
            self.make_doc(i, text, context, uploads) for i, (text, context) in enumerate(zip(request.texts, contexts))
        ]

    def process_alone(self, docs: List[Doc], request: EntsRequest) -> List[Doc]:
        """The request's Docs one by one through nlp: how a batch that failed
        finds which text of which request failed, and why."""
        contexts = request.contexts or [None] * len(docs)
        processed = []
        for i, (doc, context) in enumerate(zip(docs, contexts)):
            try:
                processed.append(self.nlp(doc))
            except ValueError as err:
                # With a client's context, a ValueError is about that context
                # (e.g. an embedding of another width than the prototypes).
                if context is None:
                    raise
                raise RequestError(422, f"contexts[{i}]: {err}") from None
        return processed


class PipelineBatcher:
    """One thread that runs the pipeline over the Docs of all the requests
    waiting, in one nlp.pipe call.

    Why: with a thread per request, 8 concurrent clients of one worker got
    0.55x the throughput of 1 client (threads contend for the interpreter
    lock and the core; Resume test texts, 1-5 per request); the tagger is
    faster per text in a batch, and one pipeline thread never contends with
    another. nlp.pipe gives the same entities as nlp(text) for any batch
    size, so a text's answer does not depend on what it was batched with.
    """

    def __init__(self, service: "Service", max_batch_texts: int = MAX_BATCH_TEXTS) -> None:
        self.service = service
        self.max_batch_texts = max_batch_texts
        self.jobs: "queue.Queue[Tuple[List[Doc], EntsRequest, Future]]" = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="spacy-lexner-pipeline", daemon=True)
        self.thread.start()

    async def annotate(self, docs: List[Doc], request: EntsRequest) -> List[Doc]:
        future: Future = Future()
        self.jobs.put((docs, request, future))
        return await asyncio.wrap_future(future)

    def _run(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            n_texts = len(jobs[0][0])
            while n_texts < self.max_batch_texts:
                try:
                    jobs.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
                n_texts += len(jobs[-1][0])
            self._process(jobs)

    def _process(self, jobs: List[Tuple[List[Doc], EntsRequest, Future]]) -> None:
        batch = [doc for docs, _, _ in jobs for doc in docs]
        try:
            processed = list(self.service.nlp.pipe(batch, batch_size=max(len(batch), 1)))
        except Exception:
            # One request's bad context must not fail the others.
            for docs, request, future in jobs:
                try:
                    future.set_result(self.service.process_alone(docs, request))
                except Exception as err:  # noqa: BLE001 - handed to the request's handler
                    future.set_exception(err)
            return
        start = 0
        for docs, _, future in jobs:
            future.set_result(processed[start : start + len(docs)])
            start += len(docs)


def doc_json(doc: Doc) -> Dict[str, Any]:
    tags = doc._.image_tags
    return {
        "ents": [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents],
        "image_tags": [[tag, score] for tag, score in tags] if tags is not None else None,
    }


def render_html(texts: List[str], results: List[Dict[str, Any]], colors: Dict[str, str]) -> str:
    """displaCy's entity style, drawn from the API's own result (manual mode),
    so the page shows exactly what /ents returns."""
    parsed = [
        {"text": text, "ents": [{k: e[k] for k in ("start", "end", "label")} for e in result["ents"]], "title": None}
        for text, result in zip(texts, results)
    ]
    return displacy.render(parsed, style="ent", manual=True, page=False, jupyter=False, options={"colors": colors})


def _decode_image(data: bytes, what: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise RequestError(
                422,
                f"{what} is {width}x{height} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels. Send a smaller image.",
            )
        return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as err:
        raise RequestError(
            422, f"{what} is not an image PIL can read ({err}). Send a PNG, JPEG or WebP file."
        ) from None


# -- parsing the body ----------------------------------------------------------


def _validation_message(err: ValidationError) -> str:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "body"
        # pydantic names the model class ("instance of EntsRequest"): the client knows JSON, not classes.
        problems.append(
            f"{where}: {'expected a JSON object' if e['type'] in ('model_type', 'dict_type') else e['msg']}"
        )
    return "; ".join(problems)


def parse_request(raw: Any) -> EntsRequest:
    try:
        return EntsRequest.model_validate(raw)
    except ValidationError as err:
        raise RequestError(
            422, f"The request does not have the expected shape ({_validation_message(err)}). Expected {REQUEST_SHAPE}."
        ) from None


def parse_json(body: bytes, what: str = "The request body") -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(422, f"{what} is not UTF-8 JSON. Expected {REQUEST_SHAPE}.") from None
    except json.JSONDecodeError as err:
        raise RequestError(422, f"{what} is not valid JSON ({err}). Expected {REQUEST_SHAPE}.") from None


async def read_request(request: Request, max_body_bytes: int) -> Tuple[EntsRequest, Dict[str, bytes], bool]:
    """The request and its uploaded files (by part name); JSON unless the
    body is multipart/form-data, whose "payload" field holds the JSON."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return parse_request(parse_json(await request.body())), {}, False
    uploads: Dict[str, bytes] = {}
    payload: Optional[str] = None
    try:
        form = await request.form(max_files=64, max_fields=16, max_part_size=max_body_bytes)
    except _BodyTooLarge:
        raise
    except Exception as err:  # starlette's MultiPartException and parser errors
        raise RequestError(422, f"The multipart body cannot be parsed ({err}).") from None
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                if name != "payload":
                    raise RequestError(
                        422, f"Unexpected form field '{name}'; send the JSON in 'payload' and files as parts."
                    )
                payload = value
            else:
                uploads[name] = await value.read()
    finally:
        await form.close()
    if payload is None:
        raise RequestError(422, f'A multipart request needs a "payload" field holding {REQUEST_SHAPE}.')
    return parse_request(parse_json(payload.encode("utf8"), 'The "payload" field')), uploads, True


# -- ASGI guard: body limit and unexpected errors ------------------------------


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# A refused body is read and dropped up to this many bytes before the 413 goes
# out: closing a connection with unread data makes the kernel reset it, and a
# client still sending then loses the 413 (seen in about half the runs of
# the chunked-upload test). Beyond this, the connection is closed anyway.
DRAIN_MAX_BYTES = 16 * 1_048_576


async def drain_body(receive: Callable, message: Optional[Dict] = None) -> None:
    """Read and drop the rest of a request body (up to DRAIN_MAX_BYTES)."""
    drained = 0
    while (message is None or message.get("more_body", False)) and drained <= DRAIN_MAX_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))


class Guard:
    """Outermost layer: refuses bodies over max_body_bytes (by Content-Length
    and while streaming, for chunked uploads), and answers any unexpected
    exception with a short 500 while the trace goes to the server's log."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = _BodyTooLarge(self.max_body_bytes)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await drain_body(receive)
            await _json_error(413, too_large.message)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    # Raised in the endpoint's read of the body: the app's
                    # RequestError handler answers it with a 413.
                    await drain_body(receive, message)
                    raise too_large
            return message

        async def tracked_send(message: Dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await _json_error(413, too_large.message)(scope, receive, send)
        except Exception:
            # With the response started, the app's handler has answered and
            # logged this exception (it re-raises after sending the 500).
            if not started:
                logger.exception("Unexpected error on %s %s", scope.get("method"), scope.get("path"))
                await _json_error(500, INTERNAL_ERROR)(scope, receive, send)


# -- the app ---------------------------------------------------------------------


def load_service(settings: ServeSettings) -> Service:
    import spacy

    if settings.torch_threads is not None:
        import torch

        torch.set_num_threads(settings.torch_threads)
    return Service(spacy.load(settings.model), settings)


def create_app(settings: Optional[ServeSettings] = None, service: Optional[Service] = None) -> Union[FastAPI, Guard]:
    """The ASGI app: loads the pipeline once (settings from $SPACY_LEXNER_SERVE
    when not given), or serves an already loaded `service`."""
    if service is None:
        service = load_service(settings or ServeSettings.from_env())
    settings = service.settings
    batcher = PipelineBatcher(service)
    api = FastAPI(title="spacy-lexner", version=service.pipeline["version"] or "0", docs_url="/docs", redoc_url=None)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    page = env.get_template("serve.html").render(meta=service.meta())

    @api.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        return _json_error(err.status, err.message)

    @api.exception_handler(Exception)
    async def unexpected_error(request: Request, err: Exception) -> JSONResponse:
        # Logged before the answer goes out, so the trace is in the log by
        # the time the client reads the 500. Starlette re-raises afterwards.
        logger.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=err)
        return _json_error(500, INTERNAL_ERROR)

    async def handle(request: Request) -> Tuple[EntsRequest, List[Dict[str, Any]]]:
        parsed, uploads, multipart = await read_request(request, settings.max_body_bytes)
        service.check(parsed, uploads, multipart)
        docs = await batcher.annotate(await run_in_threadpool(service.make_docs, parsed, uploads), parsed)
        return parsed, [doc_json(doc) for doc in docs]

    @api.post("/ents", response_model=None)
    async def ents(request: Request) -> Dict[str, Any]:
        """Entities of each text (character offsets), with the pipeline's name and version."""
        _, results = await handle(request)
        return {"pipeline": service.pipeline, "docs": results}

    @api.post("/render", response_model=None)
    async def render(request: Request) -> Dict[str, Any]:
        """As /ents, plus the entities drawn in displaCy's entity style."""
        parsed, results = await handle(request)
        html = await run_in_threadpool(render_html, parsed.texts, results, service.colors)
        return {"pipeline": service.pipeline, "docs": results, "html": html}

    @api.get("/health")
    def health() -> Dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @api.get("/meta")
    def meta() -> Dict[str, Any]:
        return service.meta()

    @api.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    return Guard(api, settings.max_body_bytes)
