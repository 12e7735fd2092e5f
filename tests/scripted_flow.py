"""A scripted stand-in model that answers the flow's prompts by rule, so tests can predict every step.

- relevance: Yes to paragraphs marked GOLD; stop: Yes once `stop_after` documents are found;
  sufficiency: Yes when the founder's paragraph was found.
- query: greedy echoes the question; sampled, 'alt query <k>'.
- answer: greedy 'plain'; sampled alternative k is 'good' for even k, 'bad <k>' for odd k.
- final: greedy, the gold answer when the notes say 'good', else 'nobody'; sampled, 'guess<k>'.
- evaluator: prefers an answer starting with 'Ada'.
Sampled alternatives are numbered by their position among identical requests in one call.
"""

from __future__ import annotations

import re
from collections import Counter

from debate_ft.backends import Completion
from debate_ft.backends.fake import FakeBackend
from debate_ft.config import FlowConfig
from debate_ft.flow.graph import NODES, Episode, Flow


class ScriptedBackend(FakeBackend):
    def __init__(self, stop_after: int = 2):
        super().__init__()
        self.stop_after = stop_after
        self.calls: list[tuple[str, int]] = []  # (kind, rows) of every backend call

    def generate(self, requests, sampling, seed, desc="generate"):
        self.calls.append(("generate", len(requests)))
        seen, out = Counter(), []
        for request in requests:
            text = request.messages[-1]["content"]
            k = seen[text]
            seen[text] += 1
            out.append(Completion(self._reply(text, k, sampling.temperature > 0), 3))
        return out

    def _reply(self, text: str, k: int, sampled: bool) -> str:
        if "search query for the next fact" in text:
            return f"alt query {k}" if sampled else re.search(r"Question: (.*)", text).group(1)
        if "answer the question in one or two sentences" in text:
            return ("good" if k % 2 == 0 else f"bad {k}") if sampled else "plain"
        if "What is the answer to the question?" in text:
            if sampled:
                return f"guess{k}"
            number = re.search(r"widget (\d+)", text).group(1)
            return f"Ada Lovelace {number}" if "Notes: good" in text else "nobody"
        raise AssertionError(f"unexpected prompt: {text[:80]}")

    def logprobs(self, requests, completions):
        self.calls.append(("logprobs", len(requests)))
        picks = [self._pick(request.messages[-1]["content"]) for request in requests]
        return [[0.0 if completion == pick else -3.0] for pick, completion in zip(picks, completions)]

    def _pick(self, text: str) -> str:
        if "Does this document contain information" in text:
            return "Yes" if "Document: " in text and "GOLD" in text.split("Document: ")[1] else "No"
        if "enough information" in text:
            return "Yes" if len(re.findall(r"^\[\d+\]", text, re.M)) >= self.stop_after else "No"
        if "answered from these documents" in text:
            return "Yes" if "founded by" in text else "No"
        if "Which answer is more likely correct?" in text:
            first = re.search(r"Answer A: (.*)", text).group(1)
            return "A" if first.startswith("Ada") else "B"
        raise AssertionError(f"unexpected scoring prompt: {text[:80]}")


def make_flow(data, stop_after: int = 2, adapters=None, **settings) -> Flow:
    backend = ScriptedBackend(stop_after)
    config = FlowConfig(**settings)
    return Flow(backend, data, config, adapters or dict.fromkeys(NODES))


def questions(data):
    """Both splits' questions in id order: the same list however the hash split falls."""
    return sorted(data.load_split("train") + data.load_split("test"), key=lambda q: q.id)


def greedy(flow: Flow, data, n: int = 0) -> Episode:
    """The finished greedy episode of the n-th question."""
    return flow.run([Episode(questions(data)[n])], seed=0)[0]
