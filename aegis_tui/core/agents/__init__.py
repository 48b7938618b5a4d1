"""Agent sessions, access grants, and the policy that decides what an agent may see and use."""
