"""The MuSiQue flow: its nodes, the episode state, and a runner that advances many episodes in lockstep.

query -> relevance -> stop --No, hops < max_hops--> query ...; then [sufficiency ->] answer -> final.

An episode *is* its list of node visits: the scratchpad, the hop count and the next node are read off that
list, so an episode forks at any visit (a one-step deviation) by copying a prefix. The runner groups the
pending episodes by their next node and makes one batched backend call per node and step, so all test
episodes, or all rollouts of a training episode, share forward passes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from tqdm.auto import tqdm

from debate_ft.backends import Backend, Request
from debate_ft.config import FlowConfig, GenerationConfig
from debate_ft.flow import prompts
from debate_ft.seeds import derive_seed
from debate_ft.tasks import Question
from debate_ft.tasks.musique import MuSiQue, Paragraph, extractive_answer, gold_support, golds, short_answer

NODES = ("query", "relevance", "stop", "sufficiency", "answer", "final")
CHOICE_NODES = ("relevance", "stop", "sufficiency")  # decided by the first token of the reply: Yes or No
# nodes whose prompt is the question plus the documents found so far
_SCRATCHPAD_PROMPTS = {
    "query": prompts.query,
    "stop": prompts.stop,
    "sufficiency": prompts.sufficiency,
    "answer": prompts.answer,
}


def active_nodes(settings: FlowConfig, full: bool) -> list[str]:
    """Nodes that call the model, so need an adapter (bm25 replaces the relevance node)."""
    skip = {"relevance"} if settings.retriever == "bm25" else set()
    return [n for n in NODES if n not in skip and (full or n != "sufficiency")]


def search_query(text: str) -> str:
    """The query a query node wrote: its first non-empty line (small models ramble on after it)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def user(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


@dataclass
class Visit:
    node: str
    hop: int
    prompt: str  # the node's user message (relevance: the search query it scored the paragraphs against)
    output: str  # generated text, Yes/No, or (relevance) the picked paragraph's title
    scores: dict = field(default_factory=dict)  # Yes/No log-probs, or paragraph idx -> relevance score
    picked: int | None = None  # relevance: the paragraph idx added to the scratchpad
    alternative: int | None = None  # set on the visit where a rollout left the greedy path


@dataclass
class Episode:
    question: Question
    visits: list[Visit] = field(default_factory=list)
    deviation: tuple[int, int] | None = None  # rollouts: (visit index, alternative number)

    @property
    def hops(self) -> int:
        return sum(v.node == "query" for v in self.visits)

    def scratchpad(self) -> list[int]:
        return [v.picked for v in self.visits if v.picked is not None]

    def output(self, node: str) -> str | None:
        """The latest output of `node`, if it ran."""
        return next((v.output for v in reversed(self.visits) if v.node == node), None)

    def fork(self, index: int, output: str, alternative: int) -> Episode:
        """A rollout: this episode up to visit `index`, whose output is replaced by an alternative."""
        changed = replace(self.visits[index], output=output, alternative=alternative)
        return Episode(self.question, [*self.visits[:index], changed], deviation=(index, alternative))

    def raw_answer(self) -> str:
        """The final node's short answer, as the model wrote it."""
        return short_answer(self.output("final") or "")

    def prediction(self, extractive: bool = False) -> dict:
        """What the evaluator scores; `extractive`: an answer found in no scratchpad paragraph is cut to its
        longest word span that one holds (the author's force_extractive at evaluation)."""
        answer = self.raw_answer()
        if extractive:
            paragraphs = {p.idx: p.text for p in self.question.meta["paragraphs"]}
            answer = extractive_answer(answer, [paragraphs[idx] for idx in self.scratchpad()])
        return {
            "answer": answer,
            "support": self.scratchpad(),
            "answerable": self.output("sufficiency") != prompts.NO,
            "support_rr": self.support_rr(),
        }

    def support_rr(self) -> float | None:
        """The retrieval measure: per hop, 1 / the rank of the best-ranked supporting paragraph among the hop's
        candidates (ties in paragraph order), averaged over the hops that had one (None: no such hop)."""
        supporting = {p.idx for p in self.question.meta["paragraphs"] if p.supporting}
        reciprocal = []
        for visit in self.visits:
            ranked = sorted(visit.scores, key=lambda idx: -visit.scores[idx]) if visit.node == "relevance" else []
            rank = next((n for n, idx in enumerate(ranked, start=1) if idx in supporting), None)
            if rank is not None:
                reciprocal.append(1 / rank)
        return sum(reciprocal) / len(reciprocal) if reciprocal else None

    def record(self, extractive: bool = False, **extra) -> dict:
        question, prediction = self.question, self.prediction(extractive)
        raw = {"raw_answer": self.raw_answer()} if extractive else {}
        return {
            "id": question.id,
            "question": question.text,
            "gold": golds(question),
            "gold_support": gold_support(question),
            "gold_answerable": question.meta["answerable"],
            **extra,
            "deviation": self.deviation,
            **prediction,
            **raw,
            "visits": [asdict(v) for v in self.visits],
        }


class Flow:
    """Runs episodes of the flow on a backend, each node under its own adapter (None: the base model)."""

    def __init__(self, backend: Backend, task: MuSiQue, settings: FlowConfig, node_adapters: Mapping[str, str | None]):
        self.backend, self.task, self.settings = backend, task, settings
        self.node_adapters = dict(node_adapters)
        self.full = task.full
        self._bm25: dict[str, object] = {}

    def sampling(self, node: str, temperature: float = 0.0) -> GenerationConfig:
        tokens = self.settings.final_tokens if node == "final" else self.settings.max_new_tokens
        return GenerationConfig(max_new_tokens=tokens, temperature=temperature, top_p=1.0)

    def next_node(self, episode: Episode) -> str | None:
        if not episode.visits:
            return "query"
        last = episode.visits[-1]
        if last.node == "query":
            return "relevance"
        if last.node == "relevance":
            looped_out = episode.hops >= self.settings.max_hops or not self.unused(episode)
            return self._after_loop() if looped_out else "stop"
        if last.node == "stop":
            return self._after_loop() if last.output == prompts.YES else "query"
        return {"sufficiency": "answer", "answer": "final", "final": None}[last.node]

    def _after_loop(self) -> str:
        return "sufficiency" if self.full else "answer"

    def run(self, episodes: Sequence[Episode], seed: int, desc: str = "episodes") -> Sequence[Episode]:
        """Advance every episode to its end; each step, one batched call per node with episodes waiting."""
        with tqdm(total=len(episodes), desc=desc, unit="episode", leave=False) as bar:
            step = 0
            while True:
                groups: dict[str, list[Episode]] = defaultdict(list)
                for episode in episodes:
                    if (node := self.next_node(episode)) is not None:
                        groups[node].append(episode)
                if not groups:
                    return episodes
                for node in NODES:
                    if groups[node]:
                        self.step(node, groups[node], derive_seed(seed, step, node))
                bar.update(sum(self.next_node(e) is None for e in groups["final"]))
                step += 1

    def step(self, node: str, group: list[Episode], seed: int) -> None:
        if node == "relevance":
            self._relevance(group)
        elif node in ("stop", "sufficiency"):
            self._decide(node, group)
        else:
            self._generate(node, group, seed)

    def prompt(self, node: str, episode: Episode) -> str:
        question = episode.question.text
        if node == "final":
            return prompts.final(question, episode.output("answer") or "", self.task.answer_format)
        found = prompts.documents(self.found(episode), self.settings.paragraph_chars)
        return _SCRATCHPAD_PROMPTS[node](question, found)

    def paragraphs(self, episode: Episode) -> dict[int, Paragraph]:
        return {p.idx: p for p in episode.question.meta["paragraphs"]}

    def found(self, episode: Episode) -> list[Paragraph]:
        paragraphs = self.paragraphs(episode)
        return [paragraphs[idx] for idx in episode.scratchpad()]

    def unused(self, episode: Episode) -> list[Paragraph]:
        used = set(episode.scratchpad())
        return [p for p in episode.question.meta["paragraphs"] if p.idx not in used]

    def _generate(self, node: str, group: list[Episode], seed: int) -> None:
        texts = [self.prompt(node, e) for e in group]
        requests = [Request(user(text), self.node_adapters[node]) for text in texts]
        completions = self.backend.generate(requests, self.sampling(node), seed, desc=node)
        for episode, text, completion in zip(group, texts, completions):
            episode.visits.append(Visit(node, episode.hops + (node == "query"), text, completion.text))

    def _decide(self, node: str, group: list[Episode]) -> None:
        texts = [self.prompt(node, e) for e in group]
        for episode, text, scores in zip(group, texts, self.yes_no(node, texts)):
            answer = prompts.YES if scores[prompts.YES] > scores[prompts.NO] else prompts.NO
            episode.visits.append(Visit(node, episode.hops, text, answer, scores))

    def _relevance(self, group: list[Episode]) -> None:
        """Score every unused paragraph against the episode's latest query; the best joins the scratchpad."""
        candidates = [self.unused(e) for e in group]
        searches = [search_query(e.output("query") or "") for e in group]
        if self.settings.retriever == "bm25":
            scores = [self._bm25_scores(e, s, c) for e, s, c in zip(group, searches, candidates)]
        else:
            flat = [
                self.relevance_prompt(e.question.text, s, p) for e, s, c in zip(group, searches, candidates) for p in c
            ]
            margins = iter(s[prompts.YES] - s[prompts.NO] for s in self.yes_no("relevance", flat))
            scores = [{p.idx: next(margins) for p in c} for c in candidates]
        for episode, search, scored in zip(group, searches, scores):
            best = max(scored, key=scored.get)  # ties: the lowest idx, as dicts keep paragraph order
            title = self.paragraphs(episode)[best].title
            episode.visits.append(Visit("relevance", episode.hops, search, title, scored, picked=best))

    def relevance_prompt(self, question: str, search: str, paragraph: Paragraph) -> str:
        return prompts.relevance(question, search, prompts.document(paragraph, self.settings.paragraph_chars))

    def yes_no(self, node: str, texts: Sequence[str]) -> list[dict[str, float]]:
        """Log-probs of Yes and No as the first token of the reply to each prompt (the author's two-way choice):
        one forward pass per prompt, in one scoring call."""
        requests = [Request(user(text), self.node_adapters[node]) for text in texts]
        rows = self.backend.choice_logprobs(requests, [prompts.YES, prompts.NO])
        return [{prompts.YES: yes, prompts.NO: no} for yes, no in rows]

    def _bm25_scores(self, episode: Episode, search: str, candidates: list[Paragraph]) -> dict[int, float]:
        import bm25s

        question = episode.question
        if question.id not in self._bm25:  # one small index per question, over its own paragraphs
            corpus = [f"{p.title} {p.text}" for p in question.meta["paragraphs"]]
            index = bm25s.BM25()
            index.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
            self._bm25[question.id] = index
        tokens = bm25s.tokenize([search], stopwords="en", show_progress=False, return_ids=False)[0]
        scores = self._bm25[question.id].get_scores(tokens)
        position = {p.idx: n for n, p in enumerate(question.meta["paragraphs"])}
        return {p.idx: float(scores[position[p.idx]]) for p in candidates}
