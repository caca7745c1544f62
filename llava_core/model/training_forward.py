"""The LLaVA body used for training: text-only batches still run the vision tower and projector.

Why: under DeepSpeed ZeRO-3 every rank must call the same modules in the same order in every
step, because each module call gathers its sharded parameters with a collective; under ZeRO-2
(and DDP) every rank must produce gradients for the same parameters, which are all-reduced in
buckets. transformers' ``LlavaModel.forward`` skips the vision tower and the projector when
``pixel_values`` is None, so a step in which one rank's micro-batch is text-only (the last,
mixed batch of the modality-grouped sampler; about 40,700 records of mix665k have no image)
desynchronises the ranks: on gloo it crashes with a collective size mismatch, on NCCL it can hang.

The original LLaVA gives each text-only sample a blank image, runs it through the vision tower
and the projector and keeps none of its features (``cur_image_features[0:0]`` in
``llava_arch.py``). :class:`BlankImageLlavaModel` does the equivalent inside the model's own
forward (so inside the DeepSpeed engine's forward, the same call trace on every rank): in
training, when a batch has no ``pixel_values``, it embeds the ids, runs one blank (all-zero,
crop-size) image through ``get_image_features`` and adds ``0 * features.sum()`` to the embeddings,
then runs the language model on those embeddings. The module order is then the one of an image
batch on every rank (embeddings, vision tower, projector, LLM), the embeddings and so the loss are
bit-identical, and the projector gets zero gradients instead of none (so AdamW weight decay would
act on it in such a step; the recipe's weight decay is 0).

Only the inner ``LlavaModel`` is replaced: the outer class stays transformers'
``LlavaForConditionalGeneration``, so ``save_pretrained`` writes the plain architecture, PEFT
wraps it as usual, and evaluation (``model.eval()``) is untouched. transformers renames weights on
save by class name and skips classes defined outside it, so this module registers ``LlavaModel``'s
renames for the subclass (``register_checkpoint_conversion_mapping``, the public hook for that):
saved files then carry exactly the names of a plain model.
"""

from __future__ import annotations

import torch
from transformers import LlavaConfig
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.models.llava.modeling_llava import LlavaModel


class BlankImageLlavaModel(LlavaModel):
    """``LlavaModel`` whose training forward runs a blank image through vision tower + projector
    when the batch has no image (see the module docstring). ``blank_image_batches`` counts the
    batches that took that path in this process."""

    def __init__(self, config: LlavaConfig):
        super().__init__(config)
        self.blank_image_batches = 0

    def forward(self, input_ids: torch.LongTensor | None = None, pixel_values: torch.Tensor | None = None,
                *args, inputs_embeds: torch.Tensor | None = None, **kwargs):
        """``LlavaModel.forward``; in training, a batch without images still runs the vision path."""
        if self.training and pixel_values is None and kwargs.get("mm_encoder_outputs") is None:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
                input_ids = None  # exactly one of the two may reach LlavaModel.forward
            blank = self._blank_image_features(kwargs.get("vision_feature_layer"),
                                               kwargs.get("vision_feature_select_strategy"))
            inputs_embeds = inputs_embeds + 0 * blank.to(inputs_embeds.dtype)
            self.blank_image_batches += 1
        return super().forward(input_ids, pixel_values, *args, inputs_embeds=inputs_embeds, **kwargs)

    def _blank_image_features(self, feature_layer, select_strategy) -> torch.Tensor:
        """The summed projector output of one all-zero image (upstream's blank is zeros after
        normalisation, at the processor's crop size, which is the tower's image size); None
        settings take the config's, as for a real image."""
        vision = self.config.vision_config
        weight = next(self.vision_tower.parameters())
        blank = torch.zeros(1, vision.num_channels, vision.image_size, vision.image_size,
                            dtype=weight.dtype, device=weight.device)
        out = self.get_image_features(pixel_values=blank, vision_feature_layer=feature_layer,
                                      vision_feature_select_strategy=select_strategy, return_dict=True)
        return sum(f.sum() for f in out.pooler_output)


_renames = get_checkpoint_conversion_mapping(LlavaModel.__name__)
if _renames is not None:
    register_checkpoint_conversion_mapping(BlankImageLlavaModel.__name__, _renames, overwrite=True)
