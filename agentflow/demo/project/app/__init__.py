"""Capsulary: a small multi-tenant service (agentflow's demo project)."""
