"""Reading and restoring a fine-tune's model and optimizer state, whole or FSDP-sharded.

Checkpoints always hold whole-model state in the single-process layout (model keys without
a wrapper prefix, optimizer state keyed by parameter index), so a job checkpointed under
one strategy or worker count resumes under another.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from w2s_ray.train.lora import is_adapted, load_classifier, trainable_state
from w2s_ray.train.model import unwrapped


class StateAccess(Protocol):
    """How `fit` and the job runner read and restore state.

    `collective` means every rank must make the same calls at the same point (FSDP gathers
    shards), so the ranks must also agree on when to checkpoint.
    """

    collective: bool

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]: ...

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict: ...

    def load(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        model_state: dict[str, torch.Tensor],
        optimizer_state: dict[str, Any],
    ) -> None: ...

    def any_rank(self, flag: bool) -> bool: ...


class WholeState:
    """One process, or DDP: every rank holds every weight, so rank 0 reads them directly.
    A LoRA classifier's state is what trains (adapters and head): its frozen base is the
    pretrained model, so checkpoints and weights files stay megabytes."""

    collective = False

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if is_adapted(model):
            return trainable_state(model)
        return unwrapped(model).state_dict()

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        return optimizer.state_dict()

    def load(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        model_state: dict[str, torch.Tensor],
        optimizer_state: dict[str, Any],
    ) -> None:
        load_classifier(model, model_state)
        optimizer.load_state_dict(optimizer_state)

    def any_rank(self, flag: bool) -> bool:
        return flag


def _trainable_names(model: nn.Module) -> list[str]:
    """Parameter names in the order `fit` hands them to the optimizer."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _by_index(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Optimizer state keyed by parameter name -> keyed by index, as `Optimizer.state_dict`."""
    index = {name: i for i, name in enumerate(names)}
    return {
        "state": {index[name]: value for name, value in state["state"].items()},
        "param_groups": [
            {**group, "params": [index[name] for name in group["params"]]}
            for group in state["param_groups"]
        ],
    }


def _by_name(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {
        "state": {names[i]: value for i, value in state["state"].items()},
        "param_groups": [
            {**group, "params": [names[i] for i in group["params"]]}
            for group in state["param_groups"]
        ],
    }


class ShardedState:
    """FSDP: each rank holds a shard; reading gathers whole tensors onto rank 0's CPU.

    Whole-state checkpoints cost one gather per save and need the model to fit in rank 0's
    host memory, which holds for every model a single node trains.
    """

    collective = True

    def _options(self, **extra: bool) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, **extra)

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(model, options=self._options(cpu_offload=True))

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(model, optimizer, options=self._options(cpu_offload=True))
        if not state:  # ranks other than 0 receive nothing
            return {}
        return _by_index(state, _trainable_names(model))

    def load(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        model_state: dict[str, torch.Tensor],
        optimizer_state: dict[str, Any],
    ) -> None:
        from torch.distributed.checkpoint.state_dict import (
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        set_model_state_dict(model, model_state, options=self._options())
        named = _by_name(optimizer_state, _trainable_names(model))
        # weights that never get a gradient (an encoder's unused pooler) have no Adam state
        set_optimizer_state_dict(model, optimizer, named, options=self._options(strict=False))

    def any_rank(self, flag: bool) -> bool:
        import torch.distributed as dist

        vote = torch.tensor([int(flag)], device=_collective_device())
        dist.all_reduce(vote, op=dist.ReduceOp.MAX)
        return bool(vote.item())


def _collective_device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shard_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap `model` in FSDP2 over all ranks: each block of every layer stack, then the rest.

    Sharding per block means only one block's weights are gathered at a time in forward and
    backward, which is where FSDP saves memory over DDP.
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    model.to(device)
    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model
