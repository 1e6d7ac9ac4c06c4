"""The import flow: which steps run, in which order, for one request."""

from __future__ import annotations

from flows.context import ImportContext
from flows.engine import Flow, Parallel, Step
from flows.steps.complete import CompleteStep
from flows.steps.convert import ConvertStep
from flows.steps.decompress import DecompressStep
from flows.steps.inject_metadata import InjectMetadataStep
from flows.steps.inspect import InspectStep
from flows.steps.lock import LockStep
from flows.steps.stage import StageStep
from flows.steps.store import Activation, StoreStep, store_group, stores_in_turn
from flows.steps.verify import VerifySignatureStep


def build_import_flow(ctx: ImportContext, targets: list[str]) -> Flow[ImportContext]:
    """The steps of ``ctx.request`` writing to ``targets`` (already resolved and checked).

    The signature is verified over the bits exactly as staged (before decompression and
    conversion), as the signer produced them. copy-image only moves data that was imported
    before: it runs no inspection, signature, metadata or conversion step, and never changes
    the image's status.

    The stores are written in the order given, one at a time (each write as soon as the one
    before it ended, each record in turn); with ``max_parallel_stores``
    N > 1, up to N at once (in groups of N, each group fed by one read of the data).
    """
    steps: list[Step[ImportContext] | Parallel[ImportContext]] = [LockStep(targets), StageStep()]
    if not ctx.is_copy:
        steps += [
            VerifySignatureStep(),
            DecompressStep(),
            InspectStep(),
            InjectMetadataStep(),
            ConvertStep(),
        ]
    steps += _store_steps(ctx, targets)
    steps.append(CompleteStep())
    return Flow(f"import:{ctx.request.method}", steps)


def _store_steps(
    ctx: ImportContext, targets: list[str]
) -> list[Step[ImportContext] | Parallel[ImportContext]]:
    if ctx.is_copy:
        activation = Activation.NEVER
    elif ctx.request.allow_failure:
        activation = Activation.FIRST_SUCCESS
    else:
        activation = Activation.ALL_WRITTEN
    width = ctx.settings.max_parallel_stores
    if width <= 1:
        return list(stores_in_turn(targets, activation))
    stores = [StoreStep(store, activation=activation) for store in targets]
    groups = [stores[start : start + width] for start in range(0, len(stores), width)]
    return [store_group(group) if len(group) > 1 else group[0] for group in groups]
