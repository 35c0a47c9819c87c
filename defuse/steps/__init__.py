"""The steps over a workspace: each reads its inputs from a project folder, calls the compute packages, and
records its artifacts and config there (``defuse.workspace``). No CLI, no UI: both call these."""
