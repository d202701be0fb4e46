"""Audience Moments Playbook: the computation behind the notebooks.

Notebooks call these modules; nothing is computed in a notebook cell itself.
"""

from __future__ import annotations

__version__ = "0.1.0"
