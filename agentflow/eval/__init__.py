"""``agentflow eval``: measure the verifier on labelled changes (dataset, runner, figures, cassettes).

The runner verifies each case exactly as ``agentflow verify`` does (the same domain function) in a
temporary clone, so the user's repository and ledger are never touched.
"""
