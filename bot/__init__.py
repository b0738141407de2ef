"""The platform-neutral core of the assistant: conversations, thread memory, the chat model."""
