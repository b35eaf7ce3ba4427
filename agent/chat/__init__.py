"""Conversations with the agent: plain commands without a model, the prebuilt tool agent with one.

:mod:`agent.chat.commands` (the plain commands, the what-if table), :mod:`agent.chat.conversation`
(history per conversation in the checkpointer), :mod:`agent.chat.routes` (``GET``/``POST /chat``).
"""
