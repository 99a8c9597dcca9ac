"""What each API view takes and returns: ``@operation`` records it, ``respond`` serialises it.

The declaration is the single source of the OpenAPI document (kb/api/openapi.py builds it from
the URL map, these declarations and ``@requires``), and ``respond`` builds every JSON answer
from the declared pydantic model, so the document and the answers cannot drift apart:

    @bp.post("/campaigns")
    @requires(Access.EDIT)
    @operation(body=CampaignIn, response=CampaignOut, status=201, errors=(400, 413, 415, 422))
    def create_campaign() -> Response:
        \"\"\"创建活动 (Create a campaign)\"\"\"
        ...
        return respond(campaign_out(campaign), 201, {"Location": ...})

The view's docstring is the summary; a paragraph after it is the description.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Response, jsonify
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    """One API operation as declared on its view (see :func:`operation`)."""

    operation_id: str
    summary: str
    description: str
    body: Mapping[str, Any]  # media type -> the type of the request body
    body_required: bool
    query: type[BaseModel] | None
    path: type[BaseModel] | None
    response: Any  # a pydantic model (or any type pydantic can describe); None: no body
    status: int
    returns: str
    errors: tuple[int, ...]
    headers: tuple[str, ...] = ()
    files: tuple[str, ...] = ()  # media types of a file download (instead of JSON)
    # Other statuses answered with a model of their own (not the error shape): status ->
    # (model, description), e.g. /readyz's 503 that still says which checks failed.
    answers: Mapping[int, tuple[Any, str]] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


def operation(
    *,
    body: Any = None,
    query: type[BaseModel] | None = None,
    path: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    returns: str = "成功",
    errors: tuple[int, ...] = (),
    body_required: bool = True,
    headers: tuple[str, ...] = (),
    files: tuple[str, ...] = (),
    answers: Mapping[int, tuple[Any, str]] | None = None,
    operation_id: str | None = None,
) -> Callable[[F], F]:
    """Declare what an API view takes (body, query, path) and answers (status, model, errors).

    ``body`` is a pydantic model read as JSON, or a mapping of media type to model when the
    view reads more than one (a multipart upload or a JSON list). ``path`` overrides the
    schemas of path parameters that the URL rule alone does not describe (an enumeration).
    ``answers`` declares other statuses that answer with a model of their own, not an error.
    ``operation_id`` defaults to the view's name in camelCase.
    """

    def mark(view: F) -> F:
        doc = inspect.getdoc(view) or ""
        summary, _, description = doc.partition("\n\n")
        if not summary.strip():
            raise TypeError(f"{view.__qualname__}: its docstring is the operation's summary")
        bodies = body if isinstance(body, Mapping) else ({"application/json": body} if body else {})
        view.kb_operation = Operation(  # type: ignore[attr-defined]
            operation_id=operation_id or _camel(view.__name__),
            summary=" ".join(summary.split()).rstrip("."),
            description=description.strip(),
            body=dict(bodies),
            body_required=body_required,
            query=query,
            path=path,
            response=response,
            status=status,
            returns=returns,
            errors=tuple(errors),
            headers=headers,
            files=files,
            answers=dict(answers or {}),
        )
        return view

    return mark


def operation_of(view: Callable[..., Any] | None) -> Operation | None:
    """Return the operation declared on a view, or None."""
    found: Operation | None = getattr(view, "kb_operation", None)
    return found


def respond(
    model: BaseModel,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    exclude_unset: bool = False,
) -> Response:
    """Answer with ``model`` as JSON (``exclude_unset``: leave out members never given)."""
    response = jsonify(model.model_dump(mode="json", exclude_unset=exclude_unset))
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
