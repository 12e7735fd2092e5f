"""The paper-style table and its paired comparisons, on hand-made metrics and outcomes."""

import pandas as pd
import pytest

from debate_ft import results


def metric(run, iteration, method, accuracy, ft_method="multiagent_ft", n=10, **extra):
    return dict(
        run=run, iteration=iteration, split="test", method=method, dataset="arithmetic", n=n, accuracy=accuracy,
        stderr=0.1, gen_tokens=100 * n, ft_method=ft_method, n_agents=3, **extra,
    )  # fmt: skip


def outcomes(run, iteration, method, correct, ft_method="multiagent_ft"):
    return [
        dict(run=run, iteration=iteration, split="test", method=method, dataset="arithmetic", question_id=f"q{i}",
             correct=c, ft_method=ft_method, n_agents=3)
        for i, c in enumerate(correct)
    ]  # fmt: skip


METRICS = pd.DataFrame(
    [
        metric("ours", 0, "base", 0.3),
        metric("ours", 0, "majority", 0.4),
        metric("ours", 0, "debate", 0.5),
        metric("ours", 1, "base", 0.1),  # a fine-tuned society's base score is not a table row
        metric("ours", 1, "debate", 0.8),
        metric("single", 0, "debate", 0.5, "single_agent_ft"),  # same cell as ours: the first run's is kept
        metric("single", 1, "debate", 0.6, "single_agent_ft"),
    ]
)


def test_rows_follow_table_1_and_cells_carry_se_n_and_tokens():
    long = results.results(METRICS)
    assert list(dict.fromkeys(long["row"])) == ["Base", "Majority", "Debate", "Single-agent FT", "Multiagent FT (ours)"]
    wide = results.wide(long)
    assert list(wide.columns) == ["arithmetic it0", "arithmetic it1"]
    assert wide.loc["Debate", "arithmetic it0"] == "0.500 ± 0.100 (n=10, 100 tok/q)"
    assert wide.loc["Multiagent FT (ours)", "arithmetic it1"].startswith("0.800")
    assert wide.loc["Base", "arithmetic it1"] == ""  # not measured, not invented
    assert long[long["row"] == "Debate"]["run"].tolist() == ["ours"]


def test_agent_counts_and_transfer_get_rows_of_their_own():
    frame = pd.DataFrame(
        [
            metric("a3", 1, "debate", 0.5),
            {**metric("a5", 1, "debate", 0.6), "n_agents": 5},
            metric("t", 1, "debate", 0.4, trained_on="math"),
            metric("a3", 0, "base", 0.2),
            {**metric("a5", 0, "base", 0.2), "n_agents": 5},
        ]
    )
    rows = list(dict.fromkeys(results.results(frame)["row"]))
    assert rows == [
        "Base",
        "Multiagent FT (ours) (3 agents)",
        "Multiagent FT (ours) (3 agents) [trained on math]",
        "Multiagent FT (ours) (5 agents)",
    ]


def test_comparisons_are_paired_on_the_same_questions():
    debate = [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    ours = [1, 1, 1, 1, 1, 0, 0, 0, 1, 0]  # 3 more right, none lost
    frame = pd.DataFrame(
        outcomes("ours", 0, "debate", debate)
        + outcomes("ours", 0, "majority", debate)
        + outcomes("ours", 1, "debate", ours)
        + outcomes("ours", 1, "majority", ours)  # not a table row: never compared
    )
    pairs = results.comparisons(frame).set_index(["a", "b"])
    line = pairs.loc[("Multiagent FT (ours) (arithmetic it1)", "Debate (arithmetic it0)")]
    assert line["difference"] == pytest.approx(0.3) and (line["a_only"], line["b_only"]) == (3, 0)
    # 3 of 10 discordant, all one way: p = 2 / 2^3, and the interval reaches 0 (resamples without them)
    assert line["p_mcnemar"] == pytest.approx(0.25) and line["ci_low"] == 0 and line["ci_high"] >= 0.5
    assert len(pairs) == 3  # ours vs debate, ours vs majority, majority vs debate (each pair once)
    assert not any("majority" in a.lower() and "it1" in a for a, _ in pairs.index)


def test_seeds_fill_one_cell_with_mean_and_range_and_each_claim_is_made_per_seed_and_pooled():
    frame = pd.DataFrame(
        [metric("s0", 0, "debate", 0.2, seed=0), metric("s1", 0, "debate", 0.4, seed=1)]
        + [metric("s0", 1, "debate", 0.5, seed=0), metric("s1", 1, "debate", 0.6, seed=1)]
        + [metric("s0-again", 1, "debate", 0.9, seed=0)]  # a second run of seed 0: the first one's is kept
    )
    long = results.results(frame)
    assert sorted(long["seed"]) == [0, 0, 1, 1]
    wide = results.wide(long)
    assert wide.loc["Debate", "arithmetic it0"] == "0.300 (0.200-0.400; 2 seeds, n=10 each, 100 tok/q)"
    assert wide.loc["Multiagent FT (ours)", "arithmetic it1"].startswith("0.550 (0.500-0.600; 2 seeds")
    seed0 = [1, 0, 0, 0]
    seed1 = [1, 1, 0, 0]
    cells = [("s0", 0, seed0, [1, 1, 1, 0]), ("s1", 1, seed1, [1, 1, 0, 0])]  # ours gains 2 at seed 0, 0 at seed 1
    rows = []
    for run, seed, debate, ours in cells:
        rows += [{**row, "seed": seed} for row in outcomes(run, 0, "debate", debate) + outcomes(run, 1, "debate", ours)]
    pairs = results.comparisons(pd.DataFrame(rows))
    assert list(pairs["seed"]) == [0, 1, "pooled"]
    assert list(pairs["difference"]) == pytest.approx([0.5, 0.0, 0.25]) and list(pairs["n"]) == [4, 4, 8]
    assert list(pairs["a_only"]) == [2, 0, 2]


def test_self_consistency_of_a_fine_tuned_society_sits_below_its_debate_with_its_cost():
    frame = pd.DataFrame(
        [
            metric("ours", 0, "debate", 0.5),
            metric("ours", 0, "self_consistency", 0.4),
            metric("ours", 1, "debate", 0.6),
            {**metric("ours", 1, "self_consistency", 0.7), "gen_tokens": 3500},
            metric("single", 1, "debate", 0.5, "single_agent_ft"),
        ]
    )
    long = results.results(frame)
    assert list(dict.fromkeys(long["row"])) == [
        "Self-consistency",
        "Debate",
        "Single-agent FT",
        "Multiagent FT (ours)",
        "Multiagent FT (ours), self-consistency",
    ]
    consistency = long[long["row"] == "Multiagent FT (ours), self-consistency"].iloc[0]
    assert consistency["tokens_per_question"] == 350 and consistency["accuracy_per_1k_tokens"] == pytest.approx(2.0)
    cells = [(0, "debate"), (0, "self_consistency"), (1, "debate"), (1, "self_consistency"), (2, "self_consistency")]
    rows = [row for k, method in cells for row in outcomes("ours", k, method, [1, 0, 1, 0])]
    pairs = results.comparisons(pd.DataFrame(rows))
    rivals = set(pairs[pairs["a"] == "Multiagent FT (ours), self-consistency (arithmetic it1)"]["b"])
    # its own debate at the same iteration and the base society's self-consistency (plus the references), never
    # another iteration's self-consistency
    assert rivals == {
        "Multiagent FT (ours) (arithmetic it1)",
        "Self-consistency (arithmetic it0)",
        "Debate (arithmetic it0)",
    }


def test_markdown_is_a_github_table():
    text = results.markdown(pd.DataFrame({"x": [0.5], "y": ["a"]}), index=False)
    assert text.splitlines() == ["| x | y |", "| --- | --- |", "| 0.500 | a |"]
