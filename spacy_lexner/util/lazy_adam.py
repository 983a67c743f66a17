"""thinc's Adam step for torch parameters with sparse (row) gradients.

The hashed embedding tables of SoftLexiconEmbed hold ~7.4M of the default
tagger's ~7.8M parameters, and a batch touches a few thousand rows. With
dense gradients every update zero-fills, accumulates, clips, Adam-steps and
averages all 7.4M values. thinc's optimizer only takes dense arrays, so this
module applies the same update to the touched rows only ("lazy" Adam, as
TensorFlow's LazyAdamOptimizer and torch's SparseAdam). Measured on Resume
(resume.cfg, 1 thread, benchmarks/train_step.py): 0.188 s per training step
with dense updates, 0.115 s with these. The update:

* gradient clipping, L2, Adam with thinc's bias correction, and the
  parameter averages (``use_averages``) follow ``thinc.optimizers.Optimizer``;
* rows a batch does not touch keep their moments, where dense Adam would
  still move them by momentum.

Averages start from the weights (thinc starts them at zero and lets them
decay): a row that is never or rarely touched must keep its value in the
averaged model, not be pulled towards zero. A row's average is the same
exponential moving average that thinc keeps of a dense parameter, computed
lazily: dense averaging pulls every row towards its weights at every step,
touched or not, so a row untouched for k steps (its weights constant) is owed
k decays towards them. They are paid when the row is next touched, and for
all rows when the averages are used (``flush_averages``, called by the shim's
``use_params`` before evaluation and saving). Without that, a row touched a
few times kept an average near its random init: on MSRA, whose 290k bigrams
each reach a row rarely, ``use_averages = true`` cost 6 dev F1 at step 5,000
(77.4 against 83.1 without averaging).
"""

import math
from typing import Any, Dict, Optional, Tuple

import torch
from thinc.api import Optimizer
from thinc.util import torch2xp, xp2torch


def check_supported(optimizer: Optimizer) -> None:
    """Refuse an optimizer whose update this module does not implement: only
    Adam is (thinc's Optimizer with beta1 > 0, beta2 > 0 and no RAdam); an
    SGD or RAdam step applied as Adam would silently train differently."""
    if getattr(optimizer, "use_radam", False) or not (optimizer.b1 > 0.0 and optimizer.b2 > 0.0):
        kind = (
            "RAdam"
            if getattr(optimizer, "use_radam", False)
            else f"beta1={optimizer.b1}, beta2={optimizer.b2} (e.g. SGD)"
        )
        raise ValueError(
            f"Sparse embedding updates (sparse_updates = true in spacy-lexner.SoftLexiconEmbed.v2) "
            f"implement Adam only, but the optimizer is {kind}. Use Adam.v1 in [training.optimizer], "
            "or set sparse_updates = false to step every row with your optimizer."
        )


def sparse_adam_step(optimizer: Optimizer, key: Tuple[int, str], param: torch.Tensor, grad: torch.Tensor) -> None:
    """Update the rows of param that the sparse grad touches, in place.
    RAISES ValueError: the optimizer is not Adam (see check_supported)."""
    check_supported(optimizer)
    grad = grad.coalesce()
    rows = grad.indices()[0]
    values = grad.values().to(param.dtype)
    if rows.numel() == 0:
        return
    optimizer.nr_update[key] += 1
    step = optimizer.nr_update[key]
    with torch.no_grad():
        current = param[rows]
        if optimizer.L2 != 0 and not optimizer.L2_is_weight_decay:
            values = values + optimizer.L2 * current
        if optimizer.grad_clip:
            norm = float(torch.linalg.vector_norm(values))
            if norm >= optimizer.grad_clip:
                values = values * (optimizer.grad_clip / norm)
        mom1, mom2, averages = _state(optimizer, key, param)
        b1, b2 = optimizer.b1, optimizer.b2
        row_mom1 = mom1[rows] * b1 + values * (1.0 - b1)
        row_mom2 = mom2[rows] * b2 + values * values * (1.0 - b2)
        mom1[rows] = row_mom1
        mom2[rows] = row_mom2
        rate = optimizer.learn_rate * math.sqrt(1.0 - b2**step) / (1.0 - b1**step)
        updated = current - rate * row_mom1 / (row_mom2.sqrt() + optimizer.eps)
        if optimizer.L2 != 0 and optimizer.L2_is_weight_decay:
            updated -= optimizer.learn_rate * optimizer.L2 * updated
        param[rows] = updated
        if averages is not None:
            row_steps = _row_steps(optimizer, key, param, first_step=step - 1)
            owed = decay_product(row_steps[rows], step - 1).to(param.dtype).unsqueeze(1)
            row_averages = current + (averages[rows] - current) * owed
            decay = min((1.0 + step) / (10.0 + step), MAX_DECAY)
            averages[rows] = row_averages - (1.0 - decay) * (row_averages - updated)
            row_steps[rows] = step
            row_steps[-1] = step


# thinc's Ops.update_averages: decay = min((1 + t) / (10 + t), 0.9999), which
# reaches the cap after step 89,990.
MAX_DECAY = 0.9999
_LAST_UNCAPPED_STEP = 89990


def decay_product(since: torch.Tensor, until: int) -> torch.Tensor:
    """The product of thinc's averaging decays over steps since+1 .. until,
    per element of since (int64): how much of the gap between an average and
    constant weights is left after those steps."""
    since = since.to(torch.float64)
    end = min(until, _LAST_UNCAPPED_STEP)
    start = torch.clamp(since, max=end)
    # prod (1 + s) / (10 + s) over s in (start, end] = G(end+2) G(start+11) / (G(start+2) G(end+11))
    log_uncapped = math.lgamma(end + 2) - math.lgamma(end + 11) - torch.lgamma(start + 2) + torch.lgamma(start + 11)
    n_capped = torch.clamp(until - torch.clamp(since, min=_LAST_UNCAPPED_STEP), min=0)
    return torch.exp(log_uncapped + n_capped * math.log(MAX_DECAY))


def _row_steps_key(key: Tuple[int, str]) -> Tuple[int, str, str]:
    return (*key, "row_steps")


def _row_steps(optimizer: Optimizer, key: Tuple[int, str], param: torch.Tensor, first_step: int) -> torch.Tensor:
    """Per row, the step its average was last brought up to date; the last
    element is the table's current step. Kept in optimizer.averages beside the
    averages (an extra key that thinc's and spaCy's use_params skip), so
    flush_averages finds it in the params it is given."""
    steps_key = _row_steps_key(key)
    if steps_key not in optimizer.averages:
        # The averages start as the weights at this step.
        optimizer.averages[steps_key] = torch.full(
            (param.shape[0] + 1,), first_step, dtype=torch.int64, device=param.device
        )
    return optimizer.averages[steps_key]


def flush_averages(params: Dict[Any, Any], key: Tuple[int, str], param: torch.Tensor) -> None:
    """Pay every row of a lazily averaged table the decays it is owed, so
    params[key] is the average thinc would keep with dense updates. A no-op
    for a parameter that sparse_adam_step does not average."""
    row_steps = params.get(_row_steps_key(key))
    if row_steps is None or key not in params:
        return
    now = int(row_steps[-1])
    with torch.no_grad():
        averages = xp2torch(params[key], device=param.device)
        owed = decay_product(row_steps[:-1], now).to(param.dtype).unsqueeze(1)
        averages.copy_(param + (averages - param) * owed)
        row_steps[:-1] = now


def _state(optimizer: Optimizer, key: Tuple[int, str], param: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:
    """The moments and averages of param, kept where thinc keeps its own
    (optimizer.mom1, .mom2, .averages under the same key), so they live and
    die with the optimizer. The arrays there share memory with the tensors."""
    if key not in optimizer.mom1:
        optimizer.mom1[key] = torch2xp(torch.zeros_like(param))
        optimizer.mom2[key] = torch2xp(torch.zeros_like(param))
        if optimizer.averages is not None:
            optimizer.averages[key] = torch2xp(param.detach().clone())
    tensors = [optimizer.mom1[key], optimizer.mom2[key]]
    tensors.append(optimizer.averages.get(key) if optimizer.averages is not None else None)
    return tuple(None if array is None else xp2torch(array, device=param.device) for array in tensors)
