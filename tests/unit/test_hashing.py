"""Hashes of the stored data: once, both digests, zeros included, holes unread."""

from __future__ import annotations

from pathlib import Path

from flows.hashing import compute_data_facts
from tests.support.images import MiB, make_sparse_raw, md5_of, sha512_of


async def test_facts_match_hashlib_over_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    make_sparse_raw(path, 40 * MiB + 512, [(3, MiB), (20 * MiB, 5 * MiB + 7)])
    facts = await compute_data_facts(path, virtual_size=40 * MiB + 512, chunk_size=MiB)
    assert facts.checksum == md5_of(path)
    assert facts.os_hash_value == sha512_of(path)
    assert facts.os_hash_algo == "sha512"
    assert facts.size == 40 * MiB + 512
