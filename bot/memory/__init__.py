"""Thread memory: the port, and its in-process and Redis implementations."""

from bot.memory.base import ThreadMemory
from bot.memory.inprocess import InProcessMemory
from bot.memory.redis import RedisMemory

__all__ = ["InProcessMemory", "RedisMemory", "ThreadMemory"]
