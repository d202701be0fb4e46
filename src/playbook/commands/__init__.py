"""Sub-commands of ``playbook``: one module each, each with ``register(subparsers)``."""
