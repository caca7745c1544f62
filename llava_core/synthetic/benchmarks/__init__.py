"""One writer per benchmark: each puts a small eval set of the tiny world into the files, names
and layout its benchmark module declares (:attr:`Benchmark.folder`, :attr:`Benchmark.files`), so
the benchmark reads it exactly as it reads the official eval kit.

Every writer is ``write(eval_root, seed, image_size, n, ...) -> Written`` and draws from its own
random stream; every question is about the shape, its colour, position or the background, so a
trained tiny model can answer some of them.
"""
