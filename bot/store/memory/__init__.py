"""Thread memory: the port, and its in-process and Redis implementations."""

from bot.store.memory.base import ThreadMemory
from bot.store.memory.inprocess import InProcessMemory
from bot.store.memory.redis import RedisMemory

__all__ = ["InProcessMemory", "RedisMemory", "ThreadMemory"]
