"""debate_ft: multiagent debate and multiagent fine-tuning of language models."""

__version__ = "0.1.0"
