"""Talking to a model: a chat session on the evaluation's code path, the terminal chat and the
side-by-side web demo."""
