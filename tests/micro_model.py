"""The micro LLaVA the model and checkpoint tests build from parts: 32 px images, 8 px patches,
two-layer CLIP and Llama of width 32 (``build_tiny_parts`` makes the parts from ``SYN``)."""

from __future__ import annotations

from types import SimpleNamespace as NS

SYN = NS(image_size=32, llm=NS(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                               vocab_size=300),
         vision=NS(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, patch_size=8))
MODEL = NS(llm="{data}/tiny-llm", vision_tower="{data}/tiny-clip", projector_type="mlp2x_gelu",
           vision_feature_layer=-2, vision_feature_select_strategy="default", image_size=32, patch_size=8,
           model_max_length=128, torch_dtype="fp32")
