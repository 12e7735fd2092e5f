"""Flow mode: a multi-node MuSiQue QA flow trained online by one-step deviations and weighted DPO."""
