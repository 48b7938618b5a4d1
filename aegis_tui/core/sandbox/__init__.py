"""The agent's sandbox: what ``session exec`` takes out of a coding agent's reach.

The broker's rules decide what an agent may ask for; they cannot stop a process of the
same user from going around the broker: reading the vault file, asking the OS keyring
over D-Bus, reading another process's memory or environment, or talking to the owner's
socket. ``session exec`` therefore starts the agent in a bubblewrap sandbox (the tool
Flatpak uses): its own PID namespace, the vault, config, keyring bus and broker folder
hidden, the installed aegis-vault read-only, no ``AEGIS_*`` variable, and a
per-session socket as its only way to the broker. The rest of the home and the project
stay as they are, so agents keep working.

- ``plan``: what to hide or make read-only and why (``SandboxPlan``, ``plan_sandbox``,
  the ``sandbox.toml`` rules), and the environment the agent gets (``sandbox_env``).
- ``bwrap``: finding a bubblewrap that works here, and the command line that applies a
  plan (the same call makes the agent's sandbox and each ``run`` child's sibling one).
"""
