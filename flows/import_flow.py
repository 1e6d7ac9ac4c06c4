"""The import flow: which steps run, in which order, for one request."""

from __future__ import annotations

from flows.context import ImportContext
from flows.engine import Flow, Step
from flows.steps.complete import CompleteStep
from flows.steps.convert import ConvertStep
from flows.steps.decompress import DecompressStep
from flows.steps.inject_metadata import InjectMetadataStep
from flows.steps.inspect import InspectStep
from flows.steps.lock import LockStep
from flows.steps.stage import StageStep
from flows.steps.store import StoreStep
from flows.steps.verify import VerifySignatureStep


def build_import_flow(ctx: ImportContext, targets: list[str]) -> Flow[ImportContext]:
    """The steps of ``ctx.request`` writing to ``targets`` (already resolved and checked).

    The signature is verified over the bits exactly as staged (before decompression and
    conversion), as the signer produced them. copy-image only moves data that was imported
    before: it runs no inspection, signature, metadata or conversion step, and never changes
    the image's status.
    """
    steps: list[Step[ImportContext]] = [LockStep(targets), StageStep()]
    if not ctx.is_copy:
        steps += [
            VerifySignatureStep(),
            DecompressStep(),
            InspectStep(),
            InjectMetadataStep(),
            ConvertStep(),
        ]
    for index, store in enumerate(targets):
        is_last = index == len(targets) - 1
        set_active = not ctx.is_copy and (ctx.request.allow_failure or is_last)
        steps.append(StoreStep(store, set_active=set_active))
    steps.append(CompleteStep())
    return Flow(f"import:{ctx.request.method}", steps)
