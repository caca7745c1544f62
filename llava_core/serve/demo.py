"""``llava-core demo``: a local web page to chat with one or two models side by side (Gradio).

The models are the results folder's variants that have a final model (stage 2's, or an imported
release's: each variant folder's ``stages.json`` says where), plus any ``--model NAME=DIR``. Each
answers through a :class:`~llava_core.serve.session.ChatSession`, so with greedy settings a
benchmark question gets the evaluation's answer. Loaded models are kept (one copy each) for the
server's life; conversations are per browser tab.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llava_core.serve.session import ChatSession, Sampling, open_image

log = logging.getLogger(__name__)
NONE = "(none)"


@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: its name, folder and the template and aspect mode it answers with."""

    name: str
    path: Path
    template: str | None = None  # None: chat if the tokenizer has a chat template, else vicuna_v1
    aspect: str = "pad"


def discover(results: Path) -> list[ModelChoice]:
    """Every variant under ``results`` with a final model, with its evaluation's template."""
    found = []
    for stages_file in sorted(Path(results).glob("*/stages.json")):
        stages = json.loads(stages_file.read_text(encoding="utf-8"))
        key = "import" if "import" in stages else "finetune"
        if key not in stages:
            continue
        folder = Path(stages[key]["dir"])
        model = (folder if folder.is_absolute() else Path(results) / folder) / "model"
        if not (model / "config.json").is_file():
            continue
        config = stages_file.parent / "report_config" / "config.yaml"
        template, aspect = None, "pad"
        if config.is_file():  # the variant's resolved config: the template it was evaluated with
            from omegaconf import OmegaConf

            cfg = OmegaConf.load(config)
            template = OmegaConf.select(cfg, "model.conversation_template")
            aspect = OmegaConf.select(cfg, "evaluation.image_aspect_ratio") or "pad"
        found.append(ModelChoice(stages_file.parent.name, model, template, aspect))
    return found


class Models:
    """Loads each model once, on first use (``quantization``: none, 8bit or 4bit for all)."""

    def __init__(self, choices: list[ModelChoice], dtype: str = "auto", quantization: str = "none"):
        self.choices = {c.name: c for c in choices}
        self.dtype, self.quantization = dtype, quantization
        self._parts: dict[str, object] = {}

    def session(self, name: str, sampling: Sampling) -> ChatSession:
        from llava_core.data.chat_template import has_chat_template
        from llava_core.evaluate.run import load_for_eval

        choice = self.choices[name]
        if name not in self._parts:
            log.info("loading %s from %s", name, choice.path)
            self._parts[name] = load_for_eval(choice.path, self.dtype, self.quantization)
        parts = self._parts[name]
        template = choice.template or ("chat" if has_chat_template(parts.tokenizer) else "vicuna_v1")
        return ChatSession(parts, template, choice.aspect, sampling)


def build_app(models: Models):
    """The Gradio page: an image, one or two models, a question, each model's conversation."""
    import gradio as gr

    names = list(models.choices)

    def ask(image_file, a, b, question, temperature, top_p, max_new_tokens, state) -> Iterator:
        question = (question or "").strip()
        if not question:
            raise gr.Error("Type a question first.")
        picked = [m for m in (a, b) if m and m != NONE]
        if not picked:
            raise gr.Error("Choose at least one model.")
        image = None
        if image_file:
            try:
                image = open_image(image_file)
            except ValueError as e:
                raise gr.Error(f"This image cannot be used: {e}") from None
        state = dict(state or {})
        sampling = Sampling(float(temperature), float(top_p), int(max_new_tokens))
        histories = [list(h) for h in state.get("shown", [[], []])]
        for col, name in enumerate((a, b)):
            if not name or name == NONE:
                continue
            key = (name, image_file)
            session = models.session(name, sampling)
            turns = state.get("turns", {}).get(repr(key), [])
            session.image, session.image_path, session.turns = image, image_file, [tuple(t) for t in turns]
            histories[col].append({"role": "user", "content": question})
            histories[col].append({"role": "assistant", "content": ""})
            for piece in session.stream(question):
                histories[col][-1]["content"] += piece
                yield histories[0], histories[1], state
            histories[col][-1]["content"] = session.turns[-1][1]
            state.setdefault("turns", {})[repr(key)] = [list(t) for t in session.turns]
        state["shown"] = histories
        yield histories[0], histories[1], state

    def clear():
        return [], [], {}

    def new_image(path):  # a new image starts new conversations; show it, or say why it cannot be used
        preview = None
        if path:
            try:
                preview = open_image(path)
            except ValueError as e:
                gr.Warning(f"This image cannot be used: {e}")
        return [], [], {}, preview

    with gr.Blocks(title="llava-core demo") as app:
        gr.Markdown("# llava-core: talk to your models\nUpload an image, choose one or two models, ask. "
                    "Greedy by default (temperature 0): a benchmark question gets the evaluation's answer.")
        state = gr.State({})
        with gr.Row():
            with gr.Column(scale=1):
                image_file = gr.File(label="Image file", file_types=["image"], type="filepath",
                                     elem_id="image-file")
                preview = gr.Image(label="Image", interactive=False, height=220, elem_id="preview")
                a = gr.Dropdown(names, value=names[0] if names else None, label="Model A", elem_id="model-a")
                b = gr.Dropdown([NONE, *names], value=names[1] if len(names) > 1 else NONE, label="Model B",
                                elem_id="model-b")
                with gr.Accordion("Generation", open=False):
                    temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0: greedy)")
                    top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
                    max_new = gr.Slider(1, 1024, value=128, step=1, label="Max new tokens")
            with gr.Column(scale=3):
                with gr.Row():
                    chat_a = gr.Chatbot(label="Model A", elem_id="chat-a", height=420)
                    chat_b = gr.Chatbot(label="Model B", elem_id="chat-b", height=420)
                question = gr.Textbox(label="Question", placeholder="What is in the image?", elem_id="question")
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask")
                    reset = gr.Button("Clear", elem_id="clear")
        inputs = [image_file, a, b, question, temperature, top_p, max_new, state]
        send.click(ask, inputs, [chat_a, chat_b, state])
        question.submit(ask, inputs, [chat_a, chat_b, state])
        reset.click(clear, None, [chat_a, chat_b, state])
        image_file.change(new_image, image_file, [chat_a, chat_b, state, preview])
    return app


def serve(models: Models, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted."""
    app = build_app(models)
    print(f"llava-core demo: {len(models.choices)} models ({', '.join(models.choices)}); "
          f"listening on http://{host}:{port}", flush=True)
    app.queue().launch(server_name=host, server_port=port, share=False, show_error=True, inbrowser=False)
