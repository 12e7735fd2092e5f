"""The debate's prompt templates, in one place (Du et al. 2023; Subramaniam et al. 2025).

The task supplies the question and the sentence that says how to state the final answer; these templates
wrap other agents' previous-round answers (verbatim or summarised) around them.
"""

from __future__ import annotations

from collections.abc import Sequence


def _solutions(responses: Sequence[str]) -> str:
    return "".join(f"\n\nOne agent solution: ```{response}```" for response in responses)


def debate_prompt(question: str, answer_format: str, others: Sequence[str]) -> str:
    """A critic's request: update your answer given the other agents' previous-round answers."""
    if not others:  # a lone agent reflects on its own answer (Du et al.'s single-agent rounds)
        return (
            "Can you double-check your solution? Examine each step and correct any mistake. "
            f"The original problem is: {question} {answer_format}"
        )
    return (
        f"These are the solutions to the problem from other agents:{_solutions(others)}\n\n"
        "Using the solutions from other agents as additional information, can you provide your answer to the "
        f"problem? The original problem is: {question} {answer_format}"
    )


def short_debate_prompt(question: str, answer_format: str, answers: Sequence[str | None]) -> str:
    """debate.prompt=short: the round-1 question with one sentence naming the other agents' parsed answers, a
    prompt a small model answers instead of copying (it copies the paper's long template)."""
    named = "; ".join("no answer" if answer is None else answer for answer in answers)
    return f"{question} Other agents answered: {named}. {answer_format}"


def summary_request(others: Sequence[str]) -> str:
    """What the summarizer (the base model) is asked, once per critic, about the other agents' answers."""
    return (
        f"Here are a list of opinions from different agents:{_solutions(others)}\n\n"
        "Write a summary of the different opinions from each of the individual agents and explain the "
        "reasoning in each solution."
    )


def summary_debate_prompt(question: str, answer_format: str, summary: str) -> str:
    return (
        f"Here is a summary of the solutions from other agents: {summary}\n\n"
        "Use this summary carefully as additional advice, can you provide an updated answer? "
        f"The original problem is: {question} {answer_format}"
    )


def persona(role: str, index: int, agents: int) -> str:
    """The system message of the agent-ID ablation: one model, told which agent it plays."""
    return f"You are {role} agent {index + 1} of {agents} in a debate. Answer in your own way."
