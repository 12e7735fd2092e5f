"""OpenAI-compatible backend: vLLM, SGLang, llama.cpp's server, a hosted API, or `python -m debate_ft serve`.

Every conversation is one /chat/completions request (the server applies the chat template); up to
`backend.concurrency` are in flight at once. The official client retries 408/409/429/5xx answers, dropped
connections and timeouts with exponential backoff (`backend.max_retries`). A LoRA adapter is the model name the
server serves it under: vLLM's `--enable-lora --lora-modules iter1/gen0=RUN/iter1/adapters/gen0 ...`.

Log-probabilities go through /completions with `echo` + `logprobs` on token ids rendered with the base model's own
tokenizer and chat template (exactly the tokens the HF backend scores); a server without prompt log-probabilities
raises LogprobsUnsupported, and the diversity stage then says which metrics it skipped.

The API key is read from the environment variable `backend.api_key_env` and never printed or saved.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
from tqdm.auto import tqdm

from debate_ft.backends import Completion, LogprobsUnsupported, Message, Request, first_token_logprobs
from debate_ft.chat import prompt_ids, reply_ids, with_system
from debate_ft.config import BackendConfig, GenerationConfig, ModelConfig
from debate_ft.errors import ModelError
from debate_ft.layout import adapter_iteration
from debate_ft.models import load_tokenizer

log = logging.getLogger(__name__)


def served_name(name: str, path: str | Path) -> str:
    """The model name a server serves an adapter folder under: `iter<k>/<name>` for a run's
    iter<k>/adapters/<name> (iterations retrain the same names, and a server cannot say which folder a bare name
    holds), else the adapter's own name."""
    path = Path(path)
    return name if adapter_iteration(path) is None else f"{path.parent.parent.name}/{name}"


class OpenAIBackend:
    def __init__(self, model: ModelConfig, backend: BackendConfig):
        self.model_config, self.url, self.key_env = model, backend.base_url, backend.api_key_env
        self.system_prompt = model.system_prompt
        self.concurrency = backend.concurrency
        key = os.environ.get(backend.api_key_env) or "EMPTY"  # servers without auth accept any key
        self.client = openai.OpenAI(
            base_url=backend.base_url, api_key=key, max_retries=backend.max_retries, timeout=backend.timeout_s
        )
        self.served = self._call(lambda: [m.id for m in self.client.models.list()])
        if not self.served:
            raise ModelError(f"the server at {self.url} lists no models")
        self.base = backend.served_model or self.served[0]
        self._check_served(self.base, "backend.served_model")
        self._adapters: dict[str, str] = {}  # adapter name -> served model name
        self._tokenizer = None

    def _call(self, request: Callable, model: str | None = None):
        """Run one API call; what a user can fix (URL, key, model name) becomes a one-line ModelError."""
        try:
            return request()
        except openai.APIConnectionError as error:  # after the client's retries; timeouts are a subclass
            raise ModelError(
                f"no OpenAI-compatible server answers at {self.url} ({type(error).__name__}); check "
                "backend.base_url and that the server is up"
            ) from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            state = "is not set" if not os.environ.get(self.key_env) else "holds a key the server refuses"
            raise ModelError(
                f"the server at {self.url} refused the request ({error.status_code}): ${self.key_env} {state}"
            ) from None
        except openai.NotFoundError:
            if model == "":  # a call that names no model: the caller says what the 404 means
                raise
            if model is None:
                raise ModelError(f"no OpenAI API at {self.url} (404 on /models); does base_url end in /v1?") from None
            self._check_served(model, "the model")
            raise

    def _check_served(self, model: str, what: str) -> None:
        if model not in self.served:
            raise ModelError(
                f"the server at {self.url} does not serve {what} {model!r}; it serves {', '.join(self.served)}"
            )

    def load_adapter(self, name: str, path: str | Path) -> None:
        """Map adapter `name` to the model the server serves its folder under (served_name). A server that does
        not serve it yet is asked to load it (vLLM's /v1/load_lora_adapter, with
        VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): each iteration's adapters get names of their own, so nothing a
        server cached for an earlier iteration's weights is reused."""
        served = served_name(name, path)
        self.served = self._call(lambda: [m.id for m in self.client.models.list()])
        if served not in self.served:
            self._load_at_runtime(served, Path(path))
        self._adapters[name] = served

    def _load_at_runtime(self, served: str, path: Path) -> None:
        body = {"lora_name": served, "lora_path": str(path.resolve())}
        try:
            self._call(lambda: self.client.post("/load_lora_adapter", body=body, cast_to=str), "")
        except openai.APIStatusError as error:
            raise ModelError(
                f"the server at {self.url} does not serve adapter {served!r} and did not load it at run time "
                f"({error.status_code}); start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and --enable-lora "
                f"(python -m debate_ft vllm-command prints it), or serve it: --lora-modules {served}={path}"
            ) from None
        self.served.append(served)

    def trainable(self) -> None:
        return None  # the server holds the model; `iterate` trains adapters on an HF copy for it to serve

    def offloaded(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()  # nothing of this engine's sits on the trainer's device

    def _model(self, request: Request) -> str:
        return self._adapters.get(request.adapter, request.adapter) if request.adapter else self.base

    def _parallel(self, function: Callable, items: Sequence, desc: str) -> list:
        with ThreadPoolExecutor(self.concurrency) as pool:
            work = pool.map(function, items)
            return list(tqdm(work, total=len(items), desc=desc, unit="req", leave=False, disable=not items))

    def generate(
        self, requests: Sequence[Request], sampling: GenerationConfig, seed: int, desc: str = "generate"
    ) -> list[Completion]:
        def one(item: tuple[int, Request]) -> Completion:
            index, request = item
            model = self._model(request)
            response = self._call(
                lambda: self.client.chat.completions.create(
                    model=model,
                    messages=with_system(request.messages, self.system_prompt),
                    max_tokens=sampling.max_new_tokens,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                    seed=seed + index,  # a row's sample does not depend on what it was sent with
                ),
                model,
            )
            text = (response.choices[0].message.content or "").strip()
            usage = response.usage
            tokens = usage.completion_tokens if usage else len(text.split()) + 1
            return Completion(text, tokens, usage.prompt_tokens if usage else None)

        return self._parallel(one, list(enumerate(requests)), desc)

    def tokenizer(self):
        if self._tokenizer is None:
            try:
                self._tokenizer = load_tokenizer(self.model_config)
            except (ModelError, OSError, ValueError) as error:
                raise LogprobsUnsupported(
                    f"no local tokenizer for model {self.model_config.name!r} to build the "
                    f"scored token ids ({str(error).splitlines()[0][:120]})"
                ) from None
        return self._tokenizer

    def prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        """The prompt's tokens as the local tokenizer renders them; None without one (generation's usage counts
        from the server are then all there is)."""
        try:
            return len(prompt_ids(self.tokenizer(), messages, self.system_prompt))
        except LogprobsUnsupported:
            return None

    def logprobs(self, requests: Sequence[Request], completions: Sequence[str]) -> list[list[float]]:
        """Per-token log-probabilities of completion + end-of-turn, as the server scores the echoed prompt."""
        tokenizer = self.tokenizer()

        def one(item: tuple[Request, str]) -> list[float]:
            request, completion = item
            ids = prompt_ids(tokenizer, request.messages, self.system_prompt)
            return self._echo_logprobs(self._model(request), ids + reply_ids(tokenizer, completion))[len(ids) :]

        return self._parallel(one, list(zip(requests, completions)), "score")

    def choice_logprobs(self, requests: Sequence[Request], choices: Sequence[str]) -> list[list[float]]:
        return first_token_logprobs(self, requests, choices)

    def _echo_logprobs(self, model: str, ids: list[int]) -> list[float]:
        try:
            response = self._call(
                lambda: self.client.completions.create(
                    model=model, prompt=ids, echo=True, logprobs=0, max_tokens=1, temperature=0
                ),
                model,
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError, openai.NotFoundError) as error:
            raise LogprobsUnsupported(
                f"the server at {self.url} does not score prompts (completions with echo + "
                f"logprobs: {error.status_code})"
            ) from None
        logprobs = response.choices[0].logprobs
        values = logprobs.token_logprobs if logprobs else None
        if not values or len(values) < len(ids):
            raise LogprobsUnsupported(f"the server at {self.url} returned no prompt log-probabilities for echo=True")
        return values[: len(ids)]
