"""The foundation: record formats, conversation templates and label masks, tokenization, image
transforms, datasets and the training index. Imports no stage package (evaluate, prepare, train,
model, synthetic): they all build on it (tests/test_layers.py)."""
