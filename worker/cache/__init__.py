"""The image cache of an ``imgworker api`` node (docs/cache.md).

Each API node keeps verified copies of images on its own disk (:mod:`.directory`, in the
format of :mod:`.entry_file`), filled by one store read per image however many downloads
ask at once (:mod:`.fill`), and served block by block, each block checked against the digest
recorded when it was filled (:mod:`.bodies`). Which node holds or queues what is recorded in
the database (:mod:`.records`); cache requests reach every node through the broker
(:mod:`.bus`); queued images are fetched by :mod:`.prefetcher`; :mod:`.maintenance` prunes
and cleans. :class:`.node.NodeCache` ties them together for the API.
"""
