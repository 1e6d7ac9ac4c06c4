"""The steps of the import flow, one module each, in the order they run."""
