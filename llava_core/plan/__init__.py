"""The plan of an experiment: its stages (a typed :class:`~llava_core.plan.stage.Stage`), where each
writes (``layout``), what reruns it (config and code digests) and what each job asks of the cluster."""
