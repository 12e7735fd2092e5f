"""MuSiQue multi-hop QA (Trivedi et al., TACL 2022) for flow mode, with the official metrics.

Rows keep the original format: id, question, answer, answer_aliases, answerable, question_decomposition and
paragraphs (idx, title, paragraph_text, is_supporting). The metrics follow the official evaluate_v1.0.py:
SQuAD-style normalisation; answer EM and F1 take the best over the answer and its aliases; support F1 compares
predicted and gold supporting paragraph indices; answer and support are scored on answerable questions only,
and MuSiQue-Full adds answerability (sufficiency) accuracy over every question.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from debate_ft.errors import DataError
from debate_ft.runs import read_jsonl, require, text_field
from debate_ft.stats import mean_stderr
from debate_ft.tasks.base import DATA_ROOT_ENV, Question, Task, jsonl_rows, local_source

HUB_REPO = "voidful/MuSiQue"  # a hub mirror of the official release files (ans + full; train, dev, test)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)
UNANSWERABLE_SUFFIX = "#unanswerable"  # MuSiQue-Full's unanswerable twin shares its answerable question's id
_ANSWER_LABEL = re.compile(
    r"^(the\s+)?(final\s+)?(short\s+)?answer\b(\s+to\s+(the|this|your)\s+question)?(\s+is)?\s*[:\-]?\s*", re.IGNORECASE
)


def normalize_answer(text: str) -> str:
    """Lower case, drop punctuation, drop articles, collapse whitespace (SQuAD / MuSiQue official)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not wanted:  # an empty side scores 1 only when both are empty (official rule)
        return float(predicted == wanted)
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def short_answer(response: str) -> str:
    """The short answer in a reply: its first non-empty line, without an 'Answer:' label or final period."""
    line = next((line.strip() for line in response.splitlines() if line.strip()), "")
    return _ANSWER_LABEL.sub("", line).strip().rstrip(".").strip()


def extractive_answer(answer: str, texts: Sequence[str]) -> str:
    """`answer` if some text contains it, else its longest run of words that one does (most words that survive
    normalisation; the earliest on ties), else `answer` unchanged: the author's force_extractive for one guess."""
    if not answer or any(answer in text for text in texts):
        return answer
    words = answer.split()
    spans = [" ".join(words[i:j]) for i in range(len(words)) for j in range(len(words), i, -1)]
    found = [span for span in spans if normalize_answer(span) and any(span in text for text in texts)]
    return max(found, key=lambda span: len(normalize_answer(span).split()), default=answer)


def answer_em(prediction: str, golds: Sequence[str]) -> float:
    return max(exact_match(prediction, gold) for gold in golds)


def answer_f1(prediction: str, golds: Sequence[str]) -> float:
    return max(token_f1(prediction, gold) for gold in golds)


def support_f1(predicted: Sequence[int], gold: Sequence[int]) -> float:
    """F1 of predicted vs gold supporting paragraph indices, as sets (0 when either is empty)."""
    predicted, gold = set(predicted), set(gold)
    hits = len(predicted & gold)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(gold)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Paragraph:
    idx: int
    title: str
    text: str
    supporting: bool


def golds(question: Question) -> list[str]:
    return [question.gold, *question.meta["aliases"]]


def gold_support(question: Question) -> list[int]:
    return [p.idx for p in question.meta["paragraphs"] if p.supporting]


def score(questions: Sequence[Question], predictions: Sequence[dict], sufficiency: bool = False) -> dict:
    """Official aggregate metrics, each with its standard error; predictions[i] = {answer: str, support: [idx],
    answerable: bool, support_rr: float | None}. support_mrr (not official) is the retrieval measure: the mean
    over questions of each hop's reciprocal rank of its best-ranked supporting candidate."""
    answerable = [(q, p) for q, p in zip(questions, predictions) if q.meta["answerable"]]
    result = {"n": len(questions)}
    for name, values in (
        ("answer_em", [answer_em(p["answer"], golds(q)) for q, p in answerable]),
        ("answer_f1", [answer_f1(p["answer"], golds(q)) for q, p in answerable]),
        ("support_f1", [support_f1(p["support"], gold_support(q)) for q, p in answerable]),
        ("support_mrr", [p["support_rr"] for _, p in answerable if p.get("support_rr") is not None]),
    ):
        if values or name != "support_mrr":  # support_mrr: only where episodes ranked paragraphs
            result[name], result[f"{name}_se"] = mean_stderr(values)
    if sufficiency:
        hits = [float(p["answerable"] == q.meta["answerable"]) for q, p in zip(questions, predictions)]
        result["sufficiency_acc"] = mean_stderr(hits)[0]
    return result


class MuSiQue(Task):
    name = "musique"
    answer_format = "Reply with the short answer only: a name, date, number or short phrase."

    @property
    def full(self) -> bool:
        """MuSiQue-Full: unanswerable questions too, and the flow's sufficiency node."""
        return self.config.variant == "full"

    def load_split(self, split: str) -> list[Question]:
        """The split's questions; an id may not repeat (in MuSiQue-Full, an answerable question and its
        unanswerable twin share one, so the twin's id gets UNANSWERABLE_SUFFIX)."""
        questions, seen = [], {}
        for where, row in self._rows(split):
            question = self._question(where, row)
            if question.id in seen:
                raise DataError(
                    f"{where}: id {question.id!r} repeats the row at {seen[question.id]}; ids must be unique"
                )
            seen[question.id] = where
            questions.append(question)
        return questions

    def _rows(self, split: str) -> list[tuple[str, dict]]:
        """Local files: musique_<variant>_v1.0_train*.jsonl serves train and the dev file serves test; with no
        train file (or dataset.path naming one file) the dev rows are cut into both splits by a hash of the id."""
        variant = self.config.variant
        source = local_source(self.config, "musique")
        if source is None:
            return _all_rows(_hub_file(variant, "train" if split == "train" else "dev"))
        if source.is_file():
            return jsonl_rows(source, split, key="id")
        train = _with_paragraphs(source, variant, "train")
        if train is not None:
            return _all_rows(train if split == "train" else _dev_file(source, variant))
        return jsonl_rows(_dev_file(source, variant), split, key="id")

    def _question(self, where: str, row: dict) -> Question:
        require(row, ("id", "question", "answer", "paragraphs"), where)
        if not isinstance(row["paragraphs"], list) or not row["paragraphs"]:
            raise DataError(f"{where}: `paragraphs` must be a non-empty list (got {str(row['paragraphs'])[:40]})")
        if not isinstance(row["answer"], (str, int, float)):
            raise DataError(f"{where}: `answer` must be a string (got {type(row['answer']).__name__})")
        aliases = row.get("answer_aliases") or []
        if not isinstance(aliases, list):
            raise DataError(f"{where}: `answer_aliases` must be a list (got {type(aliases).__name__})")
        paragraphs = []
        for number, paragraph in enumerate(row["paragraphs"]):
            at = f"{where} paragraph {number}"
            if not isinstance(paragraph, dict):
                raise DataError(f"{at}: expected an object with idx, title, paragraph_text, is_supporting")
            require(paragraph, ("idx", "title", "paragraph_text", "is_supporting"), at)
            try:
                idx = int(paragraph["idx"])
            except (TypeError, ValueError):
                raise DataError(f"{at}: `idx` must be an integer (got {paragraph['idx']!r})") from None
            text = text_field(paragraph, "paragraph_text", at)
            supporting = flag(paragraph, "is_supporting", at)
            paragraphs.append(Paragraph(idx, str(paragraph["title"]), text, supporting))
        answerable = flag(row, "answerable", where, default=True)
        meta = {
            "aliases": [str(alias) for alias in aliases],
            "answerable": answerable,
            "paragraphs": tuple(paragraphs),
            "decomposition": row.get("question_decomposition", []),
        }
        text = text_field(row, "question", where).strip()
        gold = str(row["answer"])
        if answerable and not gold.strip():
            raise DataError(f"{where}: `answer` is empty on an answerable question")
        question_id = str(row["id"]) + ("" if answerable else UNANSWERABLE_SUFFIX)
        return Question(id=question_id, text=text, gold=gold, meta=meta)

    def extract_answer(self, response: str) -> str | None:
        return short_answer(response) or None

    def equivalent(self, a: str, b: str) -> bool:
        return exact_match(a, b) == 1.0


def flag(row: dict, name: str, where: str, default: bool | None = None) -> bool:
    """A JSON true/false: "false" (a string) would read as True, so anything but a boolean is refused."""
    value = row.get(name, default)
    if not isinstance(value, bool):
        raise DataError(f"{where}: `{name}` must be true or false (got {value!r:.40})")
    return value


def _all_rows(path: Path) -> list[tuple[str, dict]]:
    return [(f"{path}:{number}", row) for number, row in enumerate(read_jsonl(path), start=1)]


def _with_paragraphs(folder: Path, variant: str, split: str) -> Path | None:
    """The official file of a split, else the first <split>*.jsonl (a subset) whose rows carry paragraphs."""
    official = folder / f"musique_{variant}_v1.0_{split}.jsonl"
    if official.exists():
        return official
    for path in sorted(folder.glob(f"musique_{variant}_v1.0_{split}*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            if '"paragraphs"' in handle.readline():
                return path
    return None


def _dev_file(folder: Path, variant: str) -> Path:
    path = _with_paragraphs(folder, variant, "dev")
    if path is None:
        raise DataError(f"no musique_{variant}_v1.0_dev*.jsonl with paragraphs in {folder}")
    return path


def _hub_file(variant: str, split: str) -> Path:
    filename = f"musique_{variant}_v1.0_{split}.jsonl"
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(HUB_REPO, filename, repo_type="dataset"))
    except Exception as error:
        raise DataError(
            f"musique: no local data and {HUB_REPO}/{filename} could not be downloaded ({type(error).__name__}). "
            f"Set dataset.path=<file or dir> or {DATA_ROOT_ENV}=<data root>; see data/README.md"
        ) from None
