"""The predict request's options and uploads, read straight from the request, and the OpenAPI that documents them.

Why not FastAPI parameters: nine of them (files, model_id/top_k/explain as query and as form) cost
about 0.1 ms of parameter solving per request, a large share of a ~1 ms prediction. Here one
pydantic model validates the options (once for the query, once for the form). The multipart body is
read by `multipart`'s push parser (Bottle's; it finds boundaries with bytes.find): Starlette's parser
(python-multipart's byte-at-a-time state machine and its callbacks) took ~60 µs of the event loop for
a 1.5 kB upload, this ~15 µs. The parts become the same Starlette FormData and UploadFiles (spooled
to disk past 1 MiB), under Starlette's limits. Errors keep FastAPI's 422 shape (RequestValidationError,
loc "query" / "body"), and the OpenAPI operation is built from the same model.
"""
from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from tempfile import SpooledTemporaryFile
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException

from api.predict.errors import FileTooLarge, OptionGivenTwice, UnreadableForm

FILES_DOC = "one or more images (PNG, JPEG, GIF, BMP, TIFF, WebP)"


class PredictOptions(BaseModel):
    """model_id, top_k, explain, keep: each may come as a query parameter or a form field."""

    model_config = ConfigDict(protected_namespaces=(), extra="ignore")

    model_id: int | None = Field(None, ge=1, le=2**31 - 1, description="a model id; default: the serving one")
    top_k: int | None = Field(None, ge=1, le=1000, description="how many ranked classes per file (1-1000, default 3)")
    explain: bool | None = Field(None, description="true: each answer carries input_png (what the model saw) and "
                                                   "the preprocessing steps")
    keep: bool | None = Field(None, description="true: keep the uploads in the prediction log (GET "
                                                "/v1/predictions/{id}/input; up to PREDICTION_INPUT_MAX_BYTES each) "
                                                "for feedback and retraining; default PREDICTION_KEEP_INPUTS")


@dataclass(frozen=True)
class PredictRequest:
    """What a predict request asks for, both sources merged."""

    files: list[UploadFile]
    model_id: int | None
    top_k: int
    explain: bool
    keep: bool | None = None  # None: as PREDICTION_KEEP_INPUTS says


_OPTIONS = tuple(PredictOptions.model_fields)


def query_options(request: Request) -> PredictOptions:
    """The options given as query parameters (422 like FastAPI's when one is out of range)."""
    if not request.scope.get("query_string"):  # most requests: no QueryParams to build
        return _NONE
    query = request.query_params
    given = {name: query[name] for name in _OPTIONS if name in query}
    return _validate(given, "query") if given else _NONE


async def read_form(request: Request, *, max_file_bytes: int) -> FormData:
    """The multipart (or urlencoded) body; UnreadableForm (→ 400) when it cannot be parsed, FileTooLarge (→ 413)
    as soon as one file passes `max_file_bytes`. Close it when done."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        return await read_parts(content_type, request.stream(), max_file_bytes=max_file_bytes)
    try:  # Starlette's part limits, as FastAPI leaves them; the byte cap is BodySizeLimit's, while it streams
        return await request.form()
    except MultiPartException as exc:
        raise UnreadableForm(exc.message) from None


# Starlette's limits for a form, as FastAPI leaves them
MAX_FILES = MAX_FIELDS = 1000
MAX_FIELD_BYTES = 1024 * 1024
SPOOL_BYTES = 1024 * 1024  # a file past this goes to a temporary file on disk


async def read_parts(content_type: str, chunks: AsyncIterable[bytes], *, max_file_bytes: int) -> FormData:
    """A multipart/form-data body as FormData: text fields as str, file parts as UploadFiles (rewound).

    Stops at the first file part over `max_file_bytes` (FileTooLarge: the rest is never read), and at
    anything unparseable, too many parts or a text field over 1 MiB (UnreadableForm).
    """
    boundary = parse_options_header(content_type)[1].get("boundary")
    if not boundary:
        raise UnreadableForm("Missing boundary in multipart.")
    items: list[tuple[str, str | UploadFile]] = []
    files = fields = 0
    part: MultipartSegment | None = None
    upload: UploadFile | None = None
    text = bytearray()
    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_FILES + MAX_FIELDS) as parser:
            async for chunk in chunks:
                for event in parser.parse(chunk) if chunk else ():
                    if isinstance(event, MultipartSegment):  # a part's headers
                        part, upload = event, None
                        if part.filename is not None:
                            files += 1
                            if files > MAX_FILES:
                                raise UnreadableForm(f"Too many files. Maximum number of files is {MAX_FILES}.")
                            upload = UploadFile(SpooledTemporaryFile(max_size=SPOOL_BYTES), size=0,
                                                filename=part.filename, headers=Headers(dict(part.headerlist)))
                            items.append((part.name or "", upload))
                        else:
                            fields += 1
                            if fields > MAX_FIELDS:
                                raise UnreadableForm(f"Too many fields. Maximum number of fields is {MAX_FIELDS}.")
                            text.clear()
                    elif event is None:  # the part's end
                        if upload is None:
                            items.append((part.name or "", _text(text, part.charset)))
                    elif upload is not None:  # a piece of a file
                        if upload.size + len(event) > max_file_bytes:
                            raise FileTooLarge(files, upload.filename, max_file_bytes)
                        await upload.write(event)  # to disk in a thread once it spools past SPOOL_BYTES
                    else:  # a piece of a text field
                        text += event
                        if len(text) > MAX_FIELD_BYTES:
                            raise UnreadableForm(f"Part exceeded maximum size of {MAX_FIELD_BYTES // 1024}KB.")
    except MultipartError as exc:
        await _close(items)
        raise UnreadableForm(str(exc)) from None
    except BaseException:
        await _close(items)
        raise
    for _, value in items:
        if isinstance(value, UploadFile):
            await value.seek(0)
    return FormData(items)


def _text(value: bytearray, charset: str | None) -> str:
    """A text field's value in its part's charset (UTF-8 when it names none); undecodable bytes become U+FFFD."""
    try:
        return value.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: the client's mistake, not a 500
        raise UnreadableForm(f"a text field names an unknown charset {charset[:40]!r}") from None


async def _close(items: list[tuple[str, str | UploadFile]]) -> None:
    for _, value in items:
        if isinstance(value, UploadFile):
            await value.close()


def predict_request(form: FormData, query: PredictOptions) -> PredictRequest:
    """The uploads and the options (query or form, both only if they agree, else 422)."""
    uploads = [f for f in form.getlist("files") if not _empty_file_input(f)]
    if not uploads:
        raise RequestValidationError([{"type": "missing", "loc": ("body", "files"), "msg": "Field required",
                                       "input": None}])
    for number, upload in enumerate(uploads):
        if not isinstance(upload, UploadFile):
            raise RequestValidationError([{
                "type": "value_error", "loc": ("body", "files", number), "input": upload[:100],
                "msg": "Value error, expected a file upload (a part with a filename), received a text field"}])
    # FastAPI's form semantics: an empty field is an absent one
    given = {name: value for name in _OPTIONS if (value := form.get(name)) is not None and value != ""}
    body = _validate(given, "body") if given else _NONE
    return PredictRequest(uploads, model_id=_one_of("model_id", query.model_id, body.model_id, None),
                          top_k=_one_of("top_k", query.top_k, body.top_k, 3),
                          explain=_one_of("explain", query.explain, body.explain, False),
                          keep=_one_of("keep", query.keep, body.keep, None))


def _validate(given: Mapping[str, Any], where: str) -> PredictOptions:
    try:
        return PredictOptions.model_validate(given)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": (where, *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


_NONE = PredictOptions()


def _one_of(name: str, query, form, default):
    """A parameter given as a query parameter or a form field (both only if they agree)."""
    if query is not None and form is not None and query != form:
        raise OptionGivenTwice(name, query, form)
    return query if query is not None else form if form is not None else default


def _empty_file_input(value: Any) -> bool:
    # browsers send a part with no filename and no bytes when no file is chosen (FastAPI drops it too)
    return isinstance(value, UploadFile) and value.filename == "" and value.size == 0


def openapi_extra() -> dict[str, Any]:
    """The query parameters and the multipart body of the operation, from PredictOptions."""
    schema = PredictOptions.model_json_schema()
    options = schema["properties"]
    parameters = [{"name": name, "in": "query", "required": False, "schema": field,
                   "description": field["description"]} for name, field in options.items()]
    body = {"title": "PredictForm", "type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "title": "Files", "description": FILES_DOC,
                  "items": {"type": "string", "contentMediaType": "application/octet-stream"}},
        **options}}
    return {"parameters": parameters,
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}
