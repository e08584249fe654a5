"""A fine-tuned classifier taken apart for an engine: its backbone written as the hub
checkpoint it started from is laid out, and its head applied in torch.

vLLM loads hub folders but not w2s-ray's classifier (a linear head with a bias over
mean- or last-token pooling). Written back into its own architecture's layout, the trained
backbone gives vLLM's pooling runner exactly the hidden states it gave in training, and
the head, bias included, turns them into the same probabilities; training is unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load

from w2s_ray.infer.backend import ClassifierRef

log = logging.getLogger(__name__)

BACKBONE_PREFIX = "backbone."  # FinetuneClassifier's attribute names
HEAD_KEYS = ("head.weight", "head.bias")


def backbone_state(weights: bytes) -> dict[str, torch.Tensor]:
    """The trained backbone's tensors, named as the backbone model names them."""
    state = load(weights)
    return {k[len(BACKBONE_PREFIX) :]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}


def head_probs(weights: bytes, pooled: torch.Tensor) -> torch.Tensor:
    """Class probabilities [N, 2] (float32) from pooled hidden states, as the classifier's
    forward computes them: the head in its own dtype, softmax in float32."""
    state = load(weights)
    weight, bias = (state[k] for k in HEAD_KEYS)
    logits = torch.nn.functional.linear(pooled.to(weight.dtype), weight, bias)
    return torch.softmax(logits.float(), dim=-1)


def export_backbone(ref: ClassifierRef, out_dir: Path, *, trust_remote_code: bool) -> None:
    """Write the trained backbone into `out_dir` in its checkpoint's own architecture (e.g.
    LlamaForCausalLM around the trained LlamaModel), safetensors, in the weights' dtype.

    Weights outside the backbone (a decoder's untied output layer) stay pretrained: the
    pooled hidden states never pass through them.
    """
    import transformers

    trained = backbone_state(ref.weights)
    config = transformers.AutoConfig.from_pretrained(
        ref.backbone, trust_remote_code=trust_remote_code
    )
    arch = (getattr(config, "architectures", None) or [""])[0]
    model_class = getattr(transformers, arch, None) or transformers.AutoModel
    model = model_class.from_pretrained(
        ref.backbone,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        dtype=next(t.dtype for t in trained.values() if t.is_floating_point()),
    )
    loaded = model.base_model.load_state_dict(trained, strict=False)
    if loaded.missing_keys:  # a backbone weight left pretrained would change every label
        raise RuntimeError(
            f"the classifier's weights do not fit {arch or 'the backbone'} of {ref.backbone}: "
            f"missing {loaded.missing_keys[:3]}"
        )
    if loaded.unexpected_keys:  # e.g. BERT's pooler, which the architecture leaves out
        log.info("not exported (unused by %s): %s", arch, loaded.unexpected_keys[:5])
    model.save_pretrained(out_dir, safe_serialization=True)
