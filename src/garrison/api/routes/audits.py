"""``/api/v1/audits/runtime/container``: audits, filtered and paged, and their export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from garrison.api.deps import Core, Reader
from garrison.audit.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, AuditFilter

router = APIRouter(tags=["audits"])
PATH = "/api/v1/audits/runtime/container"


def _filter(  # noqa: PLR0917 - one parameter per query field
    container: str = "",
    image: str = "",
    type: str = "",
    effect: str = "",
    search: str = "",
    rule: str = "",
    host: str = "",
    attack_type: Annotated[str, Query(alias="attackType")] = "",
    since: float | None = None,
    until: float | None = None,
    limit: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditFilter:
    """Query fields as ``garrison audits list`` takes them; ``since``/``until`` epoch seconds."""
    return AuditFilter(
        container=container, image=image, type=type, effect=effect, since=since, limit=limit,
        search=search, rule=rule, host=host, attack_type=attack_type, until=until, offset=offset,
    )  # fmt: skip


Query_ = Annotated[AuditFilter, Depends(_filter)]


@router.get(PATH)
def list_audits(console: Core, _: Reader, query: Query_) -> list[dict[str, Any]]:
    """Audits, newest first: each as ``garrison audits list --json`` prints it."""
    return [a.to_json() for a in console.list_audits(query)]


EXPORTS = {"application/x-ndjson": {"schema": {"type": "string"}},
           "text/csv": {"schema": {"type": "string"}}}  # fmt: skip


STREAMED: dict[int | str, dict[str, Any]] = {
    200: {"content": EXPORTS, "description": "The audits, streamed"}
}


@router.get(f"{PATH}/download", response_class=StreamingResponse, responses=STREAMED)
def download_audits(
    console: Core,
    _: Reader,
    query: Query_,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> StreamingResponse:
    """The audits as JSON lines or CSV, streamed (``garrison audits export``)."""
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    chunks = console.export_audits(query, format)
    name = f"garrison-audits.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(chunks, media_type=media, headers=headers)
