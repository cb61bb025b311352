"""The HTTP scoring service: a FastAPI app around one SentimentClassifier, loaded at start-up.

    POST /v1/predict   {"texts": ["$SPY to the moon", ...]} -> one prediction per text, in order
    POST /v1/explain   {"texts": [...], "top": K} -> the predictions, and the K tokens that moved each most, in order
    GET  /v1/model     name, version, config, labels, vocabulary size, test metrics
    GET  /             a page to score and explain messages by hand (page.html)
    GET  /metrics      Prometheus metrics (telemetry.py)
    GET  /healthz      the process is up;  GET /readyz  the model is loaded

Limits are enforced before any work: the body's size before it is read (413), then the number of
texts and the length of each (413); malformed bodies get a 422 with the reason. The OpenAPI schema
states the limits and declares every error body the routes answer with.
"""
# No `from __future__ import annotations`: FastAPI reads the routes' annotations, and those name
# request models built inside create_app, which a string annotation could not find.
import asyncio
import gc
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..classifier import SentimentClassifier
from ..errors import StocksentError
from ..scoring.scorer import check_backend
from .telemetry import MULTIPROC_ENV, RequestMetrics, Telemetry

SETTINGS_ENV = "STOCKSENT_SERVE"  # how `stocksent serve --workers N` hands settings to each worker
MAX_TOP = 64  # tokens one explanation may list


@dataclass
class ServeConfig:
    """What the service loads and the limits it enforces."""

    model_dir: str = "models/default"
    backend: str = "torch"  # or "onnx"
    threads: int = 1  # torch / onnxruntime threads per worker process
    max_texts: int = 1024  # texts in one request
    max_explain_texts: int = 32  # texts in one /v1/explain request: each costs one scoring per token
    max_chars: int = 20_000  # characters in one text
    max_body_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        check_backend(self.backend)
        limits = (self.max_texts, self.max_explain_texts, self.max_chars, self.max_body_bytes)
        if min(limits) < 1 or self.threads < 0:
            raise StocksentError("limits must be positive and threads 0 or more")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[StrictStr] = Field(min_length=1, description="messages to score, in order",
                                   examples=[["$SPY to the moon 🚀", "puts printing"]])


def _number(value: Any) -> Any:
    # JSON's 3 and 3.0 are the same integer (so says JSON Schema); "3" and true are not numbers.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return value


class ExplainRequest(PredictRequest):
    top: Annotated[int, BeforeValidator(_number)] = Field(
        MAX_TOP, ge=1, le=MAX_TOP,
        description=f"how many tokens to list per message: those of largest effect, in the message's order "
                    f"(up to {MAX_TOP})")


class Prediction(BaseModel):
    label: str
    prob_bullish: float = Field(description="probability of the positive label")
    model_version: str


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class TokenEffect(BaseModel):
    token: str = Field(description="a token as the model reads it (lower-cased; entities such as <TICKER>)")
    effect: float = Field(description="probability with the token minus without it: above 0 it pushed the "
                                      "message towards the positive label")


class Explanation(Prediction):
    tokens: list[TokenEffect] = Field(description="the tokens that moved the score most, in the message's order")


class ExplainResponse(BaseModel):
    explanations: list[Explanation]


class ModelInfo(BaseModel):
    name: str
    version: str
    backend: str
    labels: list[str] = Field(description="the negative label, then the positive one")
    vocab_size: int
    config: dict[str, Any]
    test_metrics: dict[str, Any]


class ErrorDetail(BaseModel):
    detail: str


class ValidationIssue(BaseModel):
    loc: list[str]
    msg: str
    type: str


class ValidationFailure(BaseModel):
    detail: list[ValidationIssue] | str = Field(description="where and why the body is malformed, or why it "
                                                            "could not be read at all")


def _limited(request: type[PredictRequest], most: int, chars: int) -> type[PredictRequest]:
    """`request` with the server's limits in its schema, so that clients can read them. The checks
    stay in _check_limits: going over a limit is a 413, not a malformed body's 422."""
    schema = {"maxItems": most, "items": {"type": "string", "maxLength": chars}}
    texts = (list[StrictStr], Field(min_length=1, description=request.model_fields["texts"].description,
                                    examples=request.model_fields["texts"].examples, json_schema_extra=schema))
    return create_model(request.__name__, __base__=request, texts=texts)


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, from Content-Length before anything is
    read, or while reading a body sent without one."""

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await _reject(send, 413 if declared.isdigit() else 400, "request body too large"
                                 if declared.isdigit() else "bad Content-Length")
        received, started = 0, False

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge()
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _TooLarge:
            if not started:
                await _reject(send, 413, "request body too large")


class _TooLarge(HTTPException):
    # An HTTPException, so that FastAPI, which reads the body inside the route, answers 413 itself.
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _reject(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Batcher:
    """Scores the texts of concurrent requests together: while one model call runs, new requests
    queue up, and the next call takes all of them at once. One text alone is scored at once;
    under load, the per-call cost is shared by every request in the batch. The call runs on the
    event loop itself: handing it to a thread measured slower with bench/load.py."""

    def __init__(self, classifier: SentimentClassifier, max_batch: int,
                 on_batch: Callable[[int], None] = lambda size: None):
        self.classifier, self.max_batch, self.on_batch = classifier, max_batch, on_batch
        self.queue: asyncio.Queue = asyncio.Queue()

    async def score(self, texts: list[str]) -> np.ndarray:
        done = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, done))
        return await done

    async def run(self) -> None:
        while True:
            waiting = [await self.queue.get()]
            total = len(waiting[0][0])
            while total < self.max_batch and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
                total += len(waiting[-1][0])
            await self._score_together(waiting)
            await asyncio.sleep(0)  # let the requests that arrived meanwhile join the next call

    async def _score_together(self, waiting: list[tuple[list[str], asyncio.Future]]) -> None:
        texts = [text for batch, _ in waiting for text in batch]
        try:
            probs = self.classifier.positive_proba(texts)
        except Exception as exc:  # handed to each waiting request, never kills the loop
            for _, done in waiting:
                if not done.done():  # a request cancelled while it waited wants nothing
                    done.set_exception(exc)
            return
        self.on_batch(len(texts))
        start = 0
        for batch, done in waiting:
            if not done.done():
                done.set_result(probs[start:start + len(batch)])
            start += len(batch)


def create_app(settings: ServeConfig) -> FastAPI:
    """The app; the model is loaded once, when the server starts (lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.threads:
            torch.set_num_threads(settings.threads)
        app.state.classifier = SentimentClassifier.load(settings.model_dir, backend=settings.backend,
                                                        threads=settings.threads)
        app.state.version = app.state.classifier.version_
        app.state.batcher = Batcher(app.state.classifier, settings.max_texts, telemetry.batch_scored)
        telemetry.model_loaded(_model_name(settings), app.state.version, settings.backend)
        task = asyncio.create_task(app.state.batcher.run())
        # Everything loaded so far lives as long as the server: keep it out of the garbage
        # collector's full passes, which otherwise stall every request now and then.
        gc.collect()
        gc.freeze()
        yield
        task.cancel()

    telemetry = Telemetry()
    app = FastAPI(title="stocksent", version=__version__, lifespan=lifespan,
                  description="Bullish or bearish? LSTM sentiment for trader messages.")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(StarletteHTTPException, _unparsable_body_is_422)
    app.add_exception_handler(RequestValidationError, _validation_error)
    _add_routes(app, settings)
    _add_page(app)
    _add_metrics(app, telemetry)
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    # Where and why, without echoing the input: it may be huge, or hold values such as Infinity
    # that JSON cannot encode (FastAPI's own handler fails on those with a 500).
    detail = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _unparsable_body_is_422(request: Request, exc: StarletteHTTPException) -> Response:
    # FastAPI answers a body it cannot decode (bytes that are not UTF-8) with a bare 400; it is
    # malformed JSON like any other, so it gets the same 422 as a syntax error.
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        return JSONResponse({"detail": "the body is not valid UTF-8 JSON"}, status_code=422)
    return await http_exception_handler(request, exc)


# Every route may meet BodyLimit's answers; those that read a body may also find it malformed.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "a Content-Length that is not a number"},
    413: {"model": ErrorDetail, "description": "too many texts, a text too long, or a body too large"},
}
BODY_ERRORS = {**ERRORS, 422: {"model": ValidationFailure, "description": "a malformed body"}}


def _add_routes(app: FastAPI, settings: ServeConfig) -> None:
    Predict = _limited(PredictRequest, settings.max_texts, settings.max_chars)
    Explain = _limited(ExplainRequest, settings.max_explain_texts, settings.max_chars)

    @app.post("/v1/predict", response_model=PredictResponse, responses=BODY_ERRORS)
    async def predict(body: Predict, request: Request) -> PredictResponse:
        _check_limits(body.texts, settings.max_texts, settings.max_chars)
        probs = await request.app.state.batcher.score(body.texts)
        return PredictResponse(predictions=[_prediction(request, p) for p in probs])

    @app.post("/v1/explain", response_model=ExplainResponse, responses=BODY_ERRORS)
    async def explain(body: Explain, request: Request) -> ExplainResponse:
        """Each message's prediction and the tokens that moved it most, found by leaving each token
        out in turn: one scoring per token, hence a lower limit on texts than /v1/predict's."""
        _check_limits(body.texts, settings.max_explain_texts, settings.max_chars)
        probs = await request.app.state.batcher.score(body.texts)
        # In a thread: a long explanation then does not hold up the predictions queued behind it.
        effects = await asyncio.to_thread(_explain_all, request.app.state.classifier, body.texts, body.top)
        return ExplainResponse(explanations=[
            Explanation(**_prediction(request, p).model_dump(), tokens=tokens) for p, tokens in zip(probs, effects)])

    @app.get("/v1/model", response_model=ModelInfo, responses=ERRORS)
    def model_info(request: Request) -> ModelInfo:
        clf = request.app.state.classifier
        return ModelInfo(name=_model_name(settings), version=request.app.state.version, backend=settings.backend,
                         labels=list(clf.labels), vocab_size=len(clf.vocab), config=clf.config.to_dict(),
                         test_metrics=clf.metrics.get("test", {}))

    @app.get("/healthz", responses=ERRORS)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={**ERRORS, 503: {"model": ErrorDetail, "description": "the model is not loaded"}})
    def readyz(request: Request) -> dict[str, str]:
        if getattr(request.app.state, "classifier", None) is None:
            raise HTTPException(503, "model not loaded")
        return {"status": "ready"}


def _add_page(app: FastAPI) -> None:
    # Read once: the page is one file shipped in the package, with its CSS and script inline.
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)


def _add_metrics(app: FastAPI, telemetry: Telemetry) -> None:
    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(telemetry.exposition(), media_type=telemetry.content_type)

    # Added last, so outermost: it also counts the requests BodyLimit refuses.
    app.add_middleware(RequestMetrics, telemetry=telemetry, routes={route.path for route in app.routes})


def _prediction(request: Request, prob: float) -> Prediction:
    label = request.app.state.classifier.labels[int(prob >= 0.5)]
    return Prediction(label=label, prob_bullish=round(float(prob), 6), model_version=request.app.state.version)


def _explain_all(clf: SentimentClassifier, texts: list[str], top: int) -> list[list[TokenEffect]]:
    return [[TokenEffect(token=token, effect=round(effect, 6))
             for token, effect in clf.explain(text, top, in_order=True)]
            for text in texts]


def _model_name(settings: ServeConfig) -> str:
    return Path(settings.model_dir).resolve().name


def _check_limits(texts: list[str], most: int, max_chars: int) -> None:
    if len(texts) > most:
        raise HTTPException(413, f"{len(texts)} texts; at most {most} per request")
    longest = max(map(len, texts))
    if longest > max_chars:
        raise HTTPException(413, f"a text of {longest} characters; at most {max_chars}")


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings come from $STOCKSENT_SERVE (JSON)."""
    return create_app(ServeConfig(**json.loads(os.environ[SETTINGS_ENV])))


def run(settings: ServeConfig, host: str, port: int, workers: int,
        log: Callable[[str], None] = print) -> None:
    import uvicorn

    SentimentClassifier.load(settings.model_dir, backend=settings.backend)  # fail here, in one line
    _check_address(host, port)
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed in a URL
    log(f"serving {settings.model_dir} ({settings.backend}) on http://{shown}:{port} "
        f"with {workers} worker(s); docs at /docs")
    os.environ[SETTINGS_ENV] = json.dumps(asdict(settings))
    with _shared_metrics(workers):
        uvicorn.run(f"{__name__}:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", access_log=False)


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """Workers are processes: they pool their metrics in files, in a folder of their own and fresh,
    so that no earlier run's counts are added in (unless the caller has chosen the folder)."""
    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="stocksent-metrics-")
    try:
        yield
    finally:
        shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)


def _check_address(host: str, port: int) -> None:
    """Bind once and let go, so a busy port or unknown host is one line rather than uvicorn's log."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        raise StocksentError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
