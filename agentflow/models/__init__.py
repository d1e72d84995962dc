"""Model backends behind one protocol (``agentflow.models.base.Model``).

Only ``agentflow.models.anthropic`` imports the anthropic SDK, and only when a session starts.
"""
