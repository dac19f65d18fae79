"""Training on many processes with PyTorch's own engine: torchrun starts the processes, DDP or FSDP2
(``fully_shard``) synchronises them, torch.distributed.checkpoint saves them.

A process started by torchrun (RANK/WORLD_SIZE/LOCAL_RANK in its environment) joins the process group
in ``session``; a plain ``gptkit pretrain`` never touches torch.distributed and runs as it always has.
The global batch is world-size independent: every rank draws the same ``batch_size`` windows per
micro-batch from the shared seed and keeps its own 1/world of them (gptkit.data.batches.rank_rows).

FSDP and torch.distributed.checkpoint are imported where used: together they take a second or more to
import, which a plain run, which never needs them, should not pay.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from gptkit.device import resolve_device
from gptkit.errors import GptkitError
from gptkit.model.gpt import Block

# A rank waiting in a collective for one that hangs (not one that dies: torchrun stops the others at
# once then) gives up after this, instead of holding its GPU forever. Long enough for a first compile.
TIMEOUT = timedelta(minutes=10)
# Processes started without torchrun (RANK and WORLD_SIZE set by hand or by another launcher) wait
# this long for each other to join before saying so, instead of waiting in silence.
RENDEZVOUS_S = float(os.environ.get("GPTKIT_RENDEZVOUS_TIMEOUT", "120"))
PR_SET_PDEATHSIG = 1  # prctl(2)


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """True in a process of a torchrun job once ``session`` has joined the process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or a plain process) alone prints, writes metrics, plots and samples."""
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def session(device_name: str) -> Iterator[torch.device]:
    """The device of this process; under torchrun, inside the process group (nccl on CUDA, gloo on
    the CPU), left cleanly at the end. A rank that lost a peer exits quietly: the rank that failed
    (or torchrun) says why, so the user reads one error, not one per rank."""
    if not launched_by_torchrun() or active():
        yield resolve_device(device_name)
        return
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise GptkitError(f"torchrun training runs on cuda or cpu, not {device.type}")
    if "TORCHELASTIC_RUN_ID" in os.environ:
        _die_with_launcher()
        store = {}
    else:
        store = {"store": _rendezvous(), "rank": int(os.environ["RANK"]), "world_size": int(os.environ["WORLD_SIZE"])}
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT,
                            device_id=device if device.type == "cuda" else None, **store)
    try:
        yield device
    except RuntimeError as e:
        if lost_peer(e):
            raise SystemExit(1) from None
        raise
    dist.destroy_process_group()


def _die_with_launcher() -> None:
    """End this rank when torchrun ends, even by SIGKILL. torchrun starts each rank in a session of
    its own, so nothing else would stop it: the ranks of a job killed with `kill -9` would go on
    training and saving into a run directory the user believes free. Linux's parent-death signal
    does it; elsewhere ranks outlive a killed launcher as before."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the launcher was gone before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


def _rendezvous() -> dist.Store:
    """The job's store for processes started without torchrun, waiting at most RENDEZVOUS_S for all
    of them: RANK and WORLD_SIZE left set in a shell otherwise hang a plain command without a word."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500"))
    try:
        return dist.TCPStore(host, port, world, is_master=rank == 0, timeout=timedelta(seconds=RENDEZVOUS_S),
                             wait_for_workers=True)
    except (RuntimeError, dist.DistError) as e:
        raise GptkitError(
            f"process {rank} of {world} (RANK and WORLD_SIZE are set) found no job to join at {host}:{port} within "
            f"{RENDEZVOUS_S:g} s ({str(e).splitlines()[0][:80]}): start the job with `torchrun --nproc-per-node "
            f"{world} -m gptkit ...`, or unset RANK and WORLD_SIZE to run in one process") from None


def lost_peer(e: RuntimeError) -> bool:
    """A collective failed because another rank is gone (nccl: a DistError; gloo: a closed socket)."""
    return isinstance(e, dist.DistError) or any(m in str(e) for m in ("Connection closed by peer", "Connection reset by peer"))


def wrap(model: nn.Module, parallel: str) -> nn.Module:
    """The module to run forward through: DDP around the model, or the model sharded in place by
    FSDP2, one unit per transformer block plus the root (embeddings, final norm and the tied output
    weight stay together in the root unit)."""
    if parallel == "ddp":
        device = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    from torch.distributed.fsdp import fully_shard

    for block in (m for m in model.modules() if isinstance(m, Block)):  # also inside a fine-tuning TaskModel
        fully_shard(block)
    # The root's weights (the output layer among them) end the forward and start the backward:
    # kept gathered in between, they are not gathered twice.
    return fully_shard(model, reshard_after_forward=False)


def sharded(model: nn.Module) -> bool:
    """True for FSDP's model, whose weights are spread over the ranks; not for DDP's replicas."""
    return active() and not isinstance(model, DistributedDataParallel)


def gradient_sync(model: nn.Module, sync: bool):
    """Gradients all-reduced (DDP) or reduce-scattered (FSDP) only on an optimizer step's last micro-batch."""
    if isinstance(model, DistributedDataParallel) and not sync:
        return model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):
        model.set_requires_gradient_sync(sync)
    return contextlib.nullcontext()


def my_share(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """This rank's rows of a batch every rank holds whole (the fixed validation batches)."""
    return tuple(t.tensor_split(world_size())[rank()] for t in batch)


def sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(value)
    return value


def from_main(value):
    """Rank 0's ``value`` (a small picklable object) on every rank, so that decisions taken from it
    (saving the best model, stopping early) are the same everywhere."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def full_tensor(value: torch.Tensor) -> torch.Tensor:
    """A DTensor (FSDP's gradient norm, a sharded matrix) as the plain tensor it stands for."""
    return value.full_tensor() if hasattr(value, "full_tensor") else value


def shard_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A whole tensor that every rank holds, as this rank's shard of a DTensor placed as ``like`` (a
    plain ``like``: ``value`` as it is). No communication: each rank cuts out its own part."""
    if not hasattr(like, "device_mesh"):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value, like.device_mesh, like.placements, src_data_rank=None)


def barrier() -> None:
    if active():
        dist.barrier()


# --- checkpoints: torch.distributed.checkpoint, tensors only (the JSON rest is written by rank 0) --------


def save_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> list[dict]:
    """Each rank writes its shards of the model and optimizer under ``path``; returns the optimizer's
    param groups (hyper-parameters and parameter names), which the caller keeps as JSON: no pickle."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optim": optim_state["state"]}, checkpoint_id=path)
    return optim_state["param_groups"]


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, param_groups: list[dict]) -> None:
    """Read what ``save_sharded`` wrote, resharded for this world size and ``--parallel``."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optim_state = get_state_dict(model, optimizer)  # the shapes and shards to read into
    state = {"model": model_state, "optim": optim_state["state"]}
    with warnings.catch_warnings():  # in one plain process DCP warns that it loads without a process group
        warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
        dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict={"state": state["optim"], "param_groups": param_groups})


def load_whole(model: nn.Module, optimizer: torch.optim.Optimizer, weights: dict[str, torch.Tensor],
               optim_state: dict) -> None:
    """Load a single-process checkpoint (whole weights, optimizer state keyed by parameter index) into
    every rank, each keeping its own shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    names = {p: name for name, p in model.named_parameters()}
    fqns = [names[p] for group in optimizer.param_groups for p in group["params"]]
    state = {fqns[int(i)]: slots for i, slots in optim_state["state"].items()}
    groups = [{**group, "params": [fqns[i] for i in group["params"]]} for group in optim_state["param_groups"]]
    set_state_dict(model, optimizer, model_state_dict=weights, optim_state_dict={"state": state, "param_groups": groups},
                   options=StateDictOptions(full_state_dict=True))


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on rank 0's CPU (empty on the others); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
