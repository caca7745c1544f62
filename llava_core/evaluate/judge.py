"""The LLM judge of the open-ended benchmarks: LLaVA-Bench-in-the-Wild and MM-Vet.

Three backends answer chat-completion requests: an OpenAI-compatible HTTP endpoint (stdlib
``urllib``; the API key is read from the environment variable the config names and is never
logged or written), a local transformers causal LM (``llava_core/local_chat.py``), and
:class:`RuleChat` (``kind: rule``), a
deterministic word-overlap stand-in that lets the tiny preset run offline (not the paper's judge).
On top of them:

* the official prompts: LLaVA-Bench's ``eval_gpt_review_bench.py`` layout
  (``[Context]``/``[Question]``/``[Assistant 1]``/``[Assistant 2]``/``[System]`` with the
  ``rule.json`` prompt of the question's category) and MM-Vet's few-shot grader prompt with its
  retry rule (a reply that is not a number in [0, 1] is asked again with
  "Predict the correctness of the answer (digit): ", temperature +0.5, at most 5 tries, else 0);
* ``passes`` independent judge passes (the paper averages 3 LLaVA-Bench review runs);
* a cache (``judge_cache.jsonl``) keyed by (judge model, prompt digest, pass), appended after every
  reply, so a killed judge resumes where it stopped and rescoring the same answers costs nothing,
  and retries with exponential backoff on HTTP 429, 5xx, connection errors and timeouts (both in
  ``llava_core/chat_client.py``, the transport the instruction teacher shares);
* review files in the official formats that :mod:`.benchmarks.llava_bench` and
  :mod:`.benchmarks.mm_vet` read: one ``eval_gpt_review_bench.py`` jsonl per pass, and one
  ``<model>_<judge>-grade-<n>runs.json`` grade file holding every pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llava_core.chat_client import CachedChat, ChatError, OpenAIChat
from llava_core.evalkit import KITS, kit
from llava_core.evaluate.benchmarks.base import Benchmark
from llava_core.evaluate.word_overlap import word_overlap
from llava_core.io import FormatError, read_json, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)

CACHE_FILE = "judge_cache.jsonl"

# --------------------------------------------------------------------------- official prompts
#: ``eval_gpt_review_bench.py``: the system message of every LLaVA-Bench review.
LLAVA_BENCH_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."

_LLAVA_BENCH_RULE = (
    "We would like to request your feedback on the performance of two AI assistants in response to the user "
    "question displayed above. The user asks the question on observing an image. For your reference, the visual "
    "content in the image is represented with a few sentences describing the image. \n"
    "Please rate the helpfulness, relevance, accuracy, level of details of their responses. Each assistant "
    "receives an overall score on a scale of 1 to 10, where a higher score indicates better overall performance.\n"
    "Please first output a single line containing only two values indicating the scores for Assistant 1 and 2, "
    "respectively. The two scores are separated by a space.\n"
    "In the subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential "
    "bias and ensuring that the order in which the responses were presented does not affect your judgment."
)
#: ``llava/eval/table/rule.json``, the three LLaVA-Bench categories (the same text for each).
LLAVA_BENCH_RULES = {f"llava_bench_{c}": {"role": "Assistant", "prompt": _LLAVA_BENCH_RULE}
                     for c in ("conv", "detail", "complex")}

#: ``mm-vet_evaluator.py``: the few-shot grader prompt (a user message; no system message).
MM_VET_PROMPT = """Compare the ground truth and prediction from AI models, to give a correctness score for the prediction. <AND> in the ground truth means it is totally right only when all elements in the ground truth are present in the prediction, and <OR> means it is totally right when any one element in the ground truth is present in the prediction. The correctness score is 0.0 (totally wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, or 1.0 (totally right). Just complete the last space of the correctness score.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What is x in the equation? | -1 <AND> -5 | x = 3 | 0.0
What is x in the equation? | -1 <AND> -5 | x = -1 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -5 or 5 | 0.5
What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | 1.0
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme talks about Iceland and Greenland. It's pointing out that despite their names, Iceland is not very icy and Greenland isn't very green. | 0.4
Can you explain this meme? | This meme is poking fun at the fact that the names of the countries Iceland and Greenland are misleading. Despite its name, Iceland is known for its beautiful green landscapes, while Greenland is mostly covered in ice and snow. The meme is saying that the person has trust issues because the names of these countries do not accurately represent their landscapes. | The meme is using humor to point out the misleading nature of Iceland's and Greenland's names. Iceland, despite its name, has lush green landscapes while Greenland is mostly covered in ice and snow. The text 'This is why I have trust issues' is a playful way to suggest that these contradictions can lead to distrust or confusion. The humor in this meme is derived from the unexpected contrast between the names of the countries and their actual physical characteristics. | 1.0
"""
MM_VET_RETRY_SUFFIX = "\nPredict the correctness of the answer (digit): "
MM_VET_MAX_TOKENS = 3
MM_VET_TRIES = 5


def llava_bench_content(captions: list[str], question: str, reference: str, answer: str, rule: dict) -> str:
    """The user message of one LLaVA-Bench review, laid out as ``eval_gpt_review_bench.py``."""
    role, prompt = rule["role"], rule["prompt"]
    return (f"[Context]\n{chr(10).join(captions)}\n\n"
            f"[Question]\n{question}\n\n"
            f"[{role} 1]\n{reference}\n\n[End of {role} 1]\n\n"
            f"[{role} 2]\n{answer}\n\n[End of {role} 2]\n\n"
            f"[System]\n{prompt}\n\n")


def parse_review_score(review: str) -> list[float]:
    """``parse_score`` of ``eval_gpt_review_bench.py``: "s1 s2" (or "s1, s2") on the first line; else [-1, -1]."""
    try:
        sp = review.split("\n")[0].replace(",", " ").split(" ")
        if len(sp) == 2:
            return [float(sp[0]), float(sp[1])]
    except ValueError:
        pass
    log.warning("judge reply without a score pair on its first line: %r", review[:80])
    return [-1.0, -1.0]


def mm_vet_content(question: str, ground_truth: str, prediction: str, retry: bool = False) -> str:
    gt = ground_truth.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    text = MM_VET_PROMPT + "\n" + " | ".join([question, gt, prediction, ""])
    return text + (MM_VET_RETRY_SUFFIX if retry else "")


def parse_grade(content: str) -> float | None:
    """The grader's score: the reply's first word as a number in [0, 1], else None."""
    try:
        score = float(content.split(" ")[0].strip())
    except ValueError:
        return None
    return score if 0.0 <= score <= 1.0 else None


# --------------------------------------------------------------------------- backends
RULE_JUDGE_MODEL = "rule-word-overlap"
def _between(text: str, start: str, end: str) -> str:
    head, sep, tail = text.partition(start)
    return tail.partition(end)[0].strip() if sep else ""


class RuleChat:
    """A deterministic, offline stand-in for the GPT-4 judge (``kind: rule``; the tiny preset only).

    It reads the official prompts that :func:`judge_llava_bench` and :func:`judge_mm_vet` build and
    answers them by word overlap, so the review and grade files keep their official formats:

    * LLaVA-Bench: ``"10 s"`` where the reference (Assistant 1) gets 10 and the model answer
      (Assistant 2) gets ``s = round(10 * overlap, 1)``, clamped to at least 1 (the judge's scale is
      1-10), with ``overlap`` the share of the reference's words found in the answer;
    * MM-Vet: the correctness in [0, 1] with one decimal: for ``a<AND>b`` the share of the elements
      whose words all appear in the prediction, for ``a<OR>b`` 1 if one element's do, else the
      overlap of the ground truth's words.

    It is NOT a substitute for the paper's judge: scores are not comparable to GPT-4's.
    """

    def __init__(self, cfg=None):
        self.model = str(getattr(cfg, "model", None) or RULE_JUDGE_MODEL)
        self.requests = 0

    def complete(self, messages: list[dict], *, temperature: float, max_tokens: int, seed: int) -> tuple[str, str]:
        self.requests += 1
        content = messages[-1]["content"]
        if content.startswith("[Context]"):
            reference = _between(content, "[Assistant 1]\n", "\n\n[End of Assistant 1]")
            answer = _between(content, "[Assistant 2]\n", "\n\n[End of Assistant 2]")
            overlap = word_overlap(reference, answer)
            score = max(1.0, round(10.0 * overlap, 1))
            return (f"10 {score:g}\nRule-based stand-in judge: the answer contains {overlap:.0%} of the words of "
                    "the reference answer."), self.model
        if content.startswith(MM_VET_PROMPT):
            line = content[len(MM_VET_PROMPT):].removesuffix(MM_VET_RETRY_SUFFIX).strip()
            cells = line.removesuffix("|").split(" | ", 2)  # question | ground truth | prediction |
            if len(cells) < 3:
                return "0.0", self.model
            gt, pred = cells[1].strip(), cells[2].strip()
            if "<AND>" in gt:
                parts = [p for p in gt.split("<AND>") if p.strip()]
                score = sum(word_overlap(p, pred) == 1.0 for p in parts) / len(parts)
            elif "<OR>" in gt:
                parts = [p for p in gt.split("<OR>") if p.strip()]
                score = 1.0 if any(word_overlap(p, pred) == 1.0 for p in parts) else 0.0
            else:
                score = word_overlap(gt, pred)
            return f"{round(score, 1):.1f}", self.model
        raise ChatError("the rule judge only understands the LLaVA-Bench review and MM-Vet grader prompts")


def make_backend(cfg):
    if cfg.kind == "openai":
        return OpenAIChat(cfg)
    if cfg.kind == "local":
        from llava_core.local_chat import LocalChat

        return LocalChat(cfg)
    if cfg.kind == "rule":
        return RuleChat(cfg)
    raise ValueError(f"evaluation.judge.kind={cfg.kind!r}: no judge configured (openai, local or rule)")


class Judge(CachedChat):
    """The judge: its configured backend behind the reply cache (``evaluation.judge``)."""

    def __init__(self, cfg, cache_path: Path, backend=None):
        name = cfg.model or (RULE_JUDGE_MODEL if cfg.kind == "rule" else cfg.model)
        super().__init__(name, backend if backend is not None else make_backend(cfg), cache_path, cfg)


# --------------------------------------------------------------------------- benchmarks
def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in name)


def judge_llava_bench(judge: Judge, eval_root: Path, answers: list[dict], out_dir: Path, passes: int,
                      progress: Callable[[str], None] | None = None) -> list[Path]:
    """One ``eval_gpt_review_bench.py``-format review jsonl per pass; returns their paths."""
    from llava_core.evalkit.llava_bench import CATEGORY_PREFIX, LLaVABenchKit

    bench = LLaVABenchKit()
    question_file = bench.require(eval_root, "questions")
    questions = read_jsonl(question_file)
    context_file, reference_file = bench.require(eval_root, "context"), bench.require(eval_root, "references")
    contexts = {c["image"]: c for c in read_jsonl(context_file)}
    references = {str(a["question_id"]): a for a in read_jsonl(reference_file)}
    by_id = {str(a["question_id"]): a for a in answers}
    cfg = judge.cfg
    paths = []
    for p in range(passes):
        rows = []
        for idx, q in enumerate(questions):
            qid = str(q["question_id"])
            if qid not in by_id or qid not in references:
                raise FormatError(question_file, idx + 1, f"question {qid!r} has no "
                                  f"{'model answer' if qid not in by_id else 'GPT-4 reference answer'}")
            category = CATEGORY_PREFIX + q["category"]
            if category not in LLAVA_BENCH_RULES:
                raise FormatError(question_file, idx + 1, f"category {q['category']!r} has no judge rule",
                                  "expected conv, detail or complex")
            if q["image"] not in contexts:
                raise FormatError(context_file, None, f"no context for image {q['image']!r}")
            ref, ans = references[qid], by_id[qid]
            captions = contexts[q["image"]]["caption"]  # a string in the HF files; a list is joined
            content = llava_bench_content([captions] if isinstance(captions, str) else captions, q["text"], ref["text"], ans["text"],
                                          LLAVA_BENCH_RULES[category])
            messages = [{"role": "system", "content": LLAVA_BENCH_SYSTEM}, {"role": "user", "content": content}]
            review, _ = judge.ask(messages, pass_=p, temperature=float(cfg.temperature),
                                  max_tokens=int(cfg.max_tokens))
            rows.append({"id": idx + 1, "question_id": q["question_id"],
                         "answer1_id": ref.get("answer_id", ref["question_id"]),
                         "answer2_id": ans.get("answer_id", ans["question_id"]), "category": category,
                         "content": review, "tuple": parse_review_score(review)})
        path = Path(out_dir) / "reviews" / f"{_safe(judge.name)}-eval{p + 1}.jsonl"
        write_jsonl(path, rows)
        paths.append(path)
        if progress:
            progress(f"llava_bench judge pass {p + 1}/{passes} done")
    return paths


def judge_mm_vet(judge: Judge, eval_root: Path, answers: list[dict], out_dir: Path, passes: int,
                 model_name: str = "llava", progress: Callable[[str], None] | None = None) -> list[Path]:
    """The official grader's ``<model>_<judge>-grade-<passes>runs.json``; returns ``[path]``."""
    from llava_core.evalkit.mm_vet import MMVetKit, grader_key

    meta_path = MMVetKit().path(eval_root, "metadata")
    if not meta_path.is_file():
        raise FormatError(meta_path, None, "needed by the MM-Vet judge (questions, ground truths, capabilities)",
                          "mm-vet.json comes with mm-vet.zip")
    meta = read_json(meta_path)
    preds = {grader_key(a["question_id"]): a["text"] for a in answers}
    grades: dict[str, dict[str, list[Any]]] = {}
    for p in range(passes):
        for key, pred in preds.items():
            if key not in meta:
                raise FormatError(meta_path, None, f"no entry {key!r} for an answered question")
            line = meta[key]
            grade = grades.setdefault(key, {"model": [], "content": [], "score": []})
            temperature, score, content, model = 0.0, None, "", judge.name
            for attempt in range(MM_VET_TRIES):
                text = mm_vet_content(line["question"], str(line["answer"]), pred, retry=attempt > 0)
                content, model = judge.ask([{"role": "user", "content": text}], pass_=p, temperature=temperature,
                                           max_tokens=MM_VET_MAX_TOKENS)
                score = parse_grade(content)
                if score is not None:
                    break
                if attempt > 0:
                    temperature += 0.5
            grade["model"].append(model)
            grade["content"].append(content)
            grade["score"].append(0.0 if score is None else score)
        if progress:
            progress(f"mm_vet judge pass {p + 1}/{passes} done")
    path = Path(out_dir) / "reviews" / f"{_safe(model_name)}_{_safe(judge.name)}-grade-{passes}runs.json"
    write_json(path, grades, indent=4)
    return [path]


def judge_benchmark(cfg, benchmark: str, eval_root: Path, answers: list[dict], out_dir: Path,
                    model_name: str = "llava", backend=None) -> tuple[list[Path], Judge]:
    """Judge ``answers`` of a judged benchmark; returns the review files the scorer reads, and the judge."""
    if not kit(benchmark).judged:
        judged = [name for name in KITS if kit(name).judged]
        raise ValueError(f"{benchmark} is not judged (judged: {', '.join(judged)})")
    judge = Judge(cfg, Path(out_dir) / CACHE_FILE, backend=backend)
    fn = judge_llava_bench if benchmark == "llava_bench" else judge_mm_vet
    kwargs = {"model_name": model_name} if benchmark == "mm_vet" else {}
    paths = fn(judge, eval_root, answers, out_dir, int(cfg.passes), progress=log.info, **kwargs)
    log.info("%s judge %s: %d requests, %d cached replies", benchmark, judge.name, judge.requests, judge.cached)
    return paths, judge


class JudgedBenchmark(Benchmark):
    """A benchmark scored from the judge's output (LLaVA-Bench, MM-Vet): :meth:`judge_answers` runs
    the judge. Only these benchmarks import this module, so editing the judge's prompts or parsing
    reruns their evaluations and no other."""

    def judge_answers(self, judge_cfg, eval_root: Path, answers: list[dict], out_dir: Path, *, model_name: str,
                      backend=None) -> tuple[list[Path], dict, dict]:
        reviews, judge = judge_benchmark(judge_cfg, self.name, eval_root, answers, out_dir, model_name=model_name,
                                         backend=backend)
        info = {"kind": judge_cfg.kind, "model": judge_cfg.model, "served_models": sorted(judge.served),
                "passes": judge_cfg.passes, "reviews": [str(p) for p in reviews], "requests": judge.requests,
                "cached": judge.cached}
        return reviews, info, judge_params(judge_cfg, judge)


def judge_params(cfg, judge: Judge | None = None) -> dict:
    """MLflow params of the judge that scored (no secrets). Prefixed ``eval.judge.`` so they never
    clash with the stage's ``judge.*`` config params; ``served_models`` is what the endpoint says
    answered (an alias such as ``gpt-4`` resolves to a dated snapshot)."""
    model = cfg.model or (RULE_JUDGE_MODEL if cfg.kind == "rule" else None)
    out = {"eval.judge.kind": cfg.kind, "eval.judge.model": model, "eval.judge.passes": cfg.passes}
    if cfg.kind == "openai":
        out["eval.judge.base_url"] = cfg.base_url
    if judge is not None and judge.served:
        out["eval.judge.served_models"] = ",".join(sorted(judge.served))
    return out
