"""The terminal client (``p2sp-client``): a prompt_toolkit app built on the SDK's public API.

``main`` (the entry point), ``app`` (``ClientApp``), ``commands`` (one module
per group of commands), ``registry`` (the command table), ``checks`` (rules
checked before sending), ``terminals`` (prompt and pipes), ``display`` (event
and result lines), ``strings`` (English and Chinese), ``config`` (defaults).
"""
