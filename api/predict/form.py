"""The predict request's options and uploads, read straight from the request, and the OpenAPI that documents them.

Why not FastAPI parameters: nine of them (files, model_id/top_k/explain as query and as form) cost
about 0.1 ms of parameter solving per request, a large share of a ~1 ms prediction. Here one
pydantic model validates the options (once for the query, once for the form) and Starlette's form
parser (python-multipart, as FastAPI uses it) reads the body. Errors keep FastAPI's 422 shape
(RequestValidationError, loc "query" / "body"), and the OpenAPI operation is built from the same model.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

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
    query = request.query_params
    given = {name: query[name] for name in _OPTIONS if name in query}
    return _validate(given, "query") if given else _NONE


async def read_form(request: Request, *, max_file_bytes: int) -> FormData:
    """The multipart (or urlencoded) body; UnreadableForm (→ 400) when it cannot be parsed, FileTooLarge (→ 413)
    as soon as one file passes `max_file_bytes`. Close it when done."""
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            parser = _CappedParts(request.headers, request.stream(), max_file_bytes=max_file_bytes)
            return await parser.parse()
        # Starlette's part limits, as FastAPI leaves them; the byte cap is BodySizeLimit's, while it streams
        return await request.form()
    except MultiPartException as exc:
        raise UnreadableForm(exc.message) from None


class _CappedParts(MultiPartParser):
    """Starlette's multipart parser (FastAPI's), which also stops at the first file part over its own cap:
    the request's total cap (BodySizeLimit) alone would read a 200 MB file to its end before refusing it."""

    def __init__(self, *args, max_file_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_file_bytes, self._file_bytes = max_file_bytes, 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                # the parser closes its spooled files; _current_files counts the file parts so far, this one included
                raise FileTooLarge(self._current_files, part.file.filename, self.max_file_bytes)
        super().on_part_data(data, start, end)


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
