"""The OpenAI-compatible HTTP API over a ServedSociety: /v1/models, /v1/chat/completions, /v1/completions.

Chat completions generate with the named model; `society` runs a whole debate on the last user message and
answers with the majority answer, the transcript in the extra field `debate`. Completions score prompts only
(`echo` + `logprobs`, as vLLM returns them), which is what `backend=openai` needs for the diversity metrics.
Errors have OpenAI's shape ({"error": {"message", "type", "code"}}), so clients raise their usual exceptions.
"""

from __future__ import annotations

import itertools
import secrets
import sys
import time
import uuid

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from debate_ft.serve.society import BASE_MODEL, SOCIETY_MODEL, ServedSociety


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


CHARS_PER_TOKEN = 16  # a prompt longer than this many characters per context token cannot fit: refused untokenized


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str


class ChatRequest(BaseModel):
    """What a chat request may ask; values out of range are a 400 with the field's name, before any work."""

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    seed: int | None = Field(None, ge=0, lt=2**63)  # torch's generators take 64-bit seeds
    n: int = 1


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str | list[int] = Field(min_length=1)
    echo: bool = False
    logprobs: int | None = None
    max_tokens: int | None = 16


def create_app(served: ServedSociety, api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="debate_ft society", description=__doc__)

    @app.exception_handler(APIError)
    async def api_error(_, error: APIError):
        body = {"error": {"message": error.message, "type": error.kind, "param": None, "code": error.code}}
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_, error: RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        return await api_error(_, APIError(400, f"{where}: {first.get('msg', 'invalid value')}"))

    def context(model: str) -> int:
        return served.engine(model).context or sys.maxsize  # a model config that names no context bounds nothing

    def too_long(model: str, asked: str) -> APIError:
        message = f"this model's context is {context(model)} tokens; {asked}"
        return APIError(400, message, code="context_length_exceeded")

    def fits(model: str, prompt_tokens: int, max_tokens: int) -> None:
        if prompt_tokens + max_tokens > context(model):
            raise too_long(model, f"the request asks for {prompt_tokens} prompt tokens and {max_tokens} new ones")

    def fits_untokenized(model: str, characters: int) -> None:
        """Refuse a prompt too long for the context before paying to tokenize it."""
        if characters > context(model) * CHARS_PER_TOKEN:
            raise too_long(model, f"a prompt of {characters:,} characters cannot fit")

    def authorized(request: Request) -> None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if api_key is not None and not secrets.compare_digest(given.encode(), api_key.encode()):
            raise APIError(401, "Incorrect API key provided.", "authentication_error", "invalid_api_key")

    def known(model: str) -> str:
        if model not in served.models():
            raise APIError(404, f"The model `{model}` does not exist.", code="model_not_found")
        return model

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    def models():
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "debate_ft"} for name in served.models()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    def chat(body: ChatRequest):
        model = known(body.model)
        if body.n != 1:
            raise APIError(400, "n must be 1")
        max_tokens = body.max_completion_tokens or body.max_tokens
        fits(model, 0, max_tokens or 0)
        sampling = served.sampling(max_tokens, body.temperature, body.top_p)
        seed = served.config.seed if body.seed is None else body.seed
        messages = [m.model_dump() for m in body.messages]
        fits_untokenized(model, sum(len(m["content"]) for m in messages))
        fits(model, served.engine(model).prompt_tokens(messages), sampling.max_new_tokens)
        if model == SOCIETY_MODEL:
            return society_reply(served, messages, sampling, seed)
        completion, prompt_tokens = served.chat(model, messages, sampling, seed)
        finish = "length" if completion.tokens >= sampling.max_new_tokens else "stop"
        return reply(model, completion.text, finish, prompt_tokens, completion.tokens)

    @app.post("/v1/completions", dependencies=[Depends(authorized)])
    def completions(body: CompletionRequest):
        model = known(body.model)
        if model == SOCIETY_MODEL or not body.echo or body.logprobs is None:
            raise APIError(400, "this server scores prompts on /v1/completions (echo=true with logprobs, a base or "
                           "adapter model); generate through /v1/chat/completions")  # fmt: skip
        tokenizer = served.engine(model).tokenizer
        ids = body.prompt
        if isinstance(ids, str):
            fits_untokenized(model, len(ids))
            ids = tokenizer(ids, add_special_tokens=False)["input_ids"]
        fits(model, len(ids), 0)
        vocabulary = len(tokenizer)
        if not all(0 <= i < vocabulary for i in ids):
            raise APIError(400, f"prompt: token ids must be in 0..{vocabulary - 1}")
        tokens = [tokenizer.decode([i]) for i in ids]
        offsets = [0, *itertools.accumulate(len(t) for t in tokens)][:-1]
        logprobs = {"tokens": tokens, "token_logprobs": served.score(model, ids), "top_logprobs": None,
                    "text_offset": offsets}  # fmt: skip
        choice = {"index": 0, "text": "".join(tokens), "logprobs": logprobs, "finish_reason": "length"}
        return envelope("text_completion", model, [choice], len(ids), 0)

    return app


def society_reply(served: ServedSociety, messages: list[dict], sampling, seed: int) -> dict:
    questions = [m["content"] for m in messages if m["role"] == "user"]
    if not questions:
        raise APIError(400, "the society debates the last user message; there is none")
    record = served.debate(questions[-1], sampling, seed)
    generated = sum(turn.tokens for turn in record.turns)
    asked = [(turn.model or BASE_MODEL, [{"role": "user", "content": turn.prompt}]) for turn in record.turns]
    prompt_tokens = sum(served.engine(model).prompt_tokens(messages) for model, messages in asked)
    body = reply(SOCIETY_MODEL, record.answer or "", "stop", prompt_tokens, generated)
    unasked = ("id", "gold", "correct")  # a request has no gold answer
    line = {key: value for key, value in record.to_dict().items() if key not in unasked}
    body["debate"] = {"agents": served.society.size, "rounds": served.config.debate.rounds,
                      "iteration": served.iteration, **line}  # fmt: skip
    return body


def reply(model: str, text: str, finish: str, prompt_tokens: int, generated: int) -> dict:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    return envelope("chat.completion", model, [choice], prompt_tokens, generated)


def envelope(kind: str, model: str, choices: list[dict], prompt_tokens: int, generated: int) -> dict:
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": generated, "total_tokens": prompt_tokens + generated}
    prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": model,
            "choices": choices, "usage": usage}  # fmt: skip
