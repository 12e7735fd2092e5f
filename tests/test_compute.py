"""compute.csv: every stage's tokens and seconds, per agent where it applies, and the report's breakdown."""

import pandas as pd

from debate_ft import report
from debate_ft.backends import Completion, Request
from debate_ft.compute import Ledger, Metered
from debate_ft.config import GenerationConfig
from debate_ft.runs import read_records
from debate_ft.tables import COMPUTE_FILE


def test_iterate_accounts_for_every_stage(diversity_run):
    table = pd.read_csv(diversity_run / COMPUTE_FILE, keep_default_na=False, na_values=[""])
    stages = table[table["agent"] == "all"]
    assert list(zip(stages["iteration"], stages["stage"], stages["split"])) == [
        (0, "debate", "test"), (0, "diversity", "test"), (1, "debate", "train"), (1, "train", "train"),
        (1, "debate", "test"), (1, "diversity", "test"),
    ]  # fmt: skip
    assert (stages["seconds"] > 0).all()
    test1 = table[(table["iteration"] == 1) & (table["stage"] == "debate") & (table["split"] == "test")]
    agents = test1[test1["agent"] != "all"]
    assert list(agents["agent"]) == ["crit0", "crit1", "gen0", "gen1"] and agents["seconds"].isna().all()
    turns = [turn for record in read_records(diversity_run / "iter1" / "test_2x2.jsonl") for turn in record["turns"]]
    assert agents["generated_tokens"].sum() == sum(turn["tokens"] for turn in turns)
    assert int(test1[test1["agent"] == "all"]["generated_tokens"].iloc[0]) == sum(turn["tokens"] for turn in turns)
    assert (agents["prompt_tokens"] > 0).all() and (agents["requests"] == 4).all()
    train = table[(table["stage"] == "train") & (table["agent"] != "all")]
    assert set(train["agent"]) == {"gen0", "gen1", "crit0", "crit1"} and train["seconds"].isna().all()
    assert (train["requests"] > 0).all()


class Words:
    def generate(self, requests, sampling, seed, desc="generate"):
        return [Completion("a b c", 3) for _ in requests]

    def prompt_tokens(self, messages):
        return len(messages[-1]["content"].split())


def test_a_resumed_stage_adds_up_and_a_finished_one_writes_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    backend = Metered(Words(), ledger)
    for _ in range(2):  # the second time is a resume that finishes the stage
        with ledger.stage(0, "debate", "test"):
            backend.generate([Request([{"role": "user", "content": "x y"}], agent="gen0")], GenerationConfig(), 0)
    with ledger.stage(0, "debate", "test"):
        pass  # everything was done already
    table = pd.read_csv(tmp_path / COMPUTE_FILE)
    assert len(table) == 2 and list(table["requests"]) == [2, 2] and list(table["generated_tokens"]) == [6, 6]
    assert list(table["prompt_tokens"]) == [4, 4] and list(table["calls"]) == [2, 2]


def test_an_open_stage_writes_as_it_goes_so_a_kill_keeps_its_accounting(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.flush_every = 0.0  # every call
    backend = Metered(Words(), ledger)
    ask = [Request([{"role": "user", "content": "x y"}], agent="gen0")] * 3
    with ledger.stage(0, "debate", "test"):
        backend.generate(ask, GenerationConfig(), 0)
        written = pd.read_csv(tmp_path / COMPUTE_FILE)  # what a kill here would leave
        backend.generate(ask[:1], GenerationConfig(), 0)
    assert list(written["requests"]) == [3, 3] and written["seconds"].iloc[0] > 0
    table = pd.read_csv(tmp_path / COMPUTE_FILE)
    assert list(table["agent"]) == ["all", "gen0"] and list(table["requests"]) == [4, 4]
    assert list(table["calls"]) == [2, 2] and list(table["generated_tokens"]) == [12, 12]
    assert table["seconds"].iloc[0] >= written["seconds"].iloc[0]


def test_report_prints_the_stage_breakdown(diversity_run, tmp_path, capsys):
    assert report.main([str(diversity_run), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.split("compute per stage")[1].split("debate accuracy and diversity")[0]
    assert sum(" diversity " in line for line in out.splitlines()) == 2 and "tokens_per_s" in out
