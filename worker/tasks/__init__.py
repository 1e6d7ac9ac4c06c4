"""A task's life: accepting it, running it, deleting data, staging, and what a process holds."""
