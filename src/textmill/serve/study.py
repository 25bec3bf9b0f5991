"""The rating pages of a human evaluation study: `/rate` shows a rater one task at a time; the API
under `/humaneval` hands out tasks and records judgements (humaneval/study.py keeps them). Every
`/humaneval` call carries the rater's name and their invitation's token; a wrong or missing token is
a 403, with or without the server's API key, which raters never need."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from ..errors import TextmillError
from ..humaneval.study import SCALE, AlreadyJudged, NotInvited, Study
from .schema import APIError

PAGE = Path(__file__).parent / "static" / "rate.html"


class RatingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rater: str
    token: str
    item: int
    fluency: int = Field(ge=SCALE[0], le=SCALE[1])
    coherence: int = Field(ge=SCALE[0], le=SCALE[1])
    grammar: int = Field(ge=SCALE[0], le=SCALE[1])


class PreferenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rater: str
    token: str
    pair: int
    choice: Literal["a", "b", "tie"]


def study_router(path: str | Path, read) -> APIRouter:
    """Routes for the study at `path`; `read(request, schema)` parses a body as the API does."""
    study = Study(path)  # a file that is not a study fails here, before the server starts
    router = APIRouter()
    page_html = PAGE.read_text(encoding="utf-8")

    async def call(fn, *args) -> Any:
        try:
            return await run_in_threadpool(fn, *args)
        except AlreadyJudged as e:
            raise APIError(409, str(e), code="already_judged") from None
        except NotInvited as e:
            raise APIError(403, str(e), type="permission_error", code="not_invited") from None
        except TextmillError as e:
            raise APIError(400, str(e)) from None

    @router.get("/rate", response_class=HTMLResponse)
    async def page() -> str:
        return page_html

    @router.get("/humaneval/next")
    async def next_task(rater: str = "", token: str = "") -> dict[str, Any]:
        return await call(lambda: study.next_task(study.admit(rater, token)))

    @router.post("/humaneval/rating")
    async def rating(request: Request) -> dict[str, Any]:
        body: RatingBody = await read(request, RatingBody)
        rater = await call(study.admit, body.rater, body.token)
        await call(study.rate, rater, body.item, body.model_dump(include={"fluency", "coherence", "grammar"}))
        return await call(study.next_task, rater)

    @router.post("/humaneval/preference")
    async def preference(request: Request) -> dict[str, Any]:
        body: PreferenceBody = await read(request, PreferenceBody)
        rater = await call(study.admit, body.rater, body.token)
        await call(study.prefer, rater, body.pair, body.choice)
        return await call(study.next_task, rater)

    return router
