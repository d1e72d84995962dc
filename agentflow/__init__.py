"""agentflow: builder and verifier sessions on code changes, merges gated on content-bound approval."""

__version__ = "0.1.0"
