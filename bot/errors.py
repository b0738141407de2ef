"""One error tree for the core; adapters turn any of these into one sentence for the user.

    BotError
    ├── ConfigError            a setting is missing or invalid
    ├── InvalidRequest         what the user asked for makes no sense (bad window, unknown command)
    ├── StoreUnavailable       the conversation store (Redis) cannot be reached
    │   └── StoreFull          it refuses writes: out of memory (maxmemory with noeviction)
    ├── ThreadBusy             another answer in the same thread held it for too long
    ├── Interrupted            the bot stopped or restarted while answering
    ├── Fenced                 this process lost an answer to recovery: it must not write it
    ├── FileProblem            a shared file cannot be read (type, size, download, corrupt)
    ├── OverQuota              a daily token limit is reached (which one, and when it resets)
    └── ModelError             the chat model failed
        ├── ModelRateLimited   429; carries retry_after in seconds when the server said
        ├── ModelTimeout       no answer in time
        ├── ContextTooLong     the prompt does not fit the model's context window
        ├── ContentFiltered    the provider's content filter refused the prompt or the answer
        ├── ModelMisconfigured bad key, unknown model or deployment, no quota
        ├── ModelUnavailable   connection refused, 5xx, the stream broke off
        ├── ImagesRefused      the model does not take image input
        └── AnswerCutOff       the stream ended cleanly but unfinished; carries what arrived

Library errors are wrapped at the port edge (`raise ... from exc`), so nothing above the ports
needs to know about openai or redis exceptions.
"""

from __future__ import annotations

import math


class BotError(Exception):
    """Root of every error the core raises on purpose."""

    def user_message(self) -> str:
        return "Something went wrong on my side; please try again."


class ConfigError(BotError):
    def __init__(self, variable: str, expectation: str) -> None:
        super().__init__(f"{variable}: {expectation}")
        self.variable = variable
        self.expectation = expectation

    def user_message(self) -> str:
        return (
            "I am misconfigured, so I cannot answer; an administrator needs to check my settings."
        )


class InvalidRequest(BotError):
    """The message of an InvalidRequest is already the sentence the user should read."""

    def user_message(self) -> str:
        return str(self)


class StoreUnavailable(BotError):
    def user_message(self) -> str:
        return (
            "My conversation store is unavailable right now, so I cannot answer; "
            "please try again in a minute."
        )


class StoreFull(StoreUnavailable):
    def user_message(self) -> str:
        return (
            "My conversation store is full, so I cannot answer or remember anything new; "
            "an administrator needs to give Redis more memory."
        )


class ThreadBusy(BotError):
    def user_message(self) -> str:
        return (
            "I am still busy with an earlier message in this thread; please try again in a moment."
        )


class Interrupted(BotError):
    def user_message(self) -> str:
        return (
            "I was restarted before I could finish answering this; please send your message again."
        )


class Fenced(BotError):
    """This process was taken for dead while answering (a long pause, a partition) and another
    settled its answer: nothing more of that answer may be shown or saved. Never shown to a user:
    the sentence recovery posted stays."""


class FileProblem(BotError):
    """Its message is the sentence the user reads, naming the file and the limit."""

    def user_message(self) -> str:
        return str(self)


class OverQuota(BotError):
    """Its message is the sentence the user reads: which limit, and when it resets."""

    def user_message(self) -> str:
        return str(self)


class ModelError(BotError):
    def user_message(self) -> str:
        return "The language model failed to answer; please try again."


class ModelRateLimited(ModelError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def user_message(self) -> str:
        if self.retry_after is not None and self.retry_after > 0:
            seconds = max(1, math.ceil(self.retry_after))
            return f"The language model is rate limited right now; please try again in {seconds} s."
        return "The language model is rate limited right now; please try again in a minute."


class ModelTimeout(ModelError):
    def user_message(self) -> str:
        return "The language model took too long to answer; please try again."


class ContextTooLong(ModelError):
    def user_message(self) -> str:
        return (
            "This conversation is too long for the language model; "
            "try a shorter message or start a new thread."
        )


class ContentFiltered(ModelError):
    def user_message(self) -> str:
        return "The language model's content filter blocked this message, so I cannot answer it."


class ModelMisconfigured(ModelError):
    def user_message(self) -> str:
        return (
            "I cannot reach the language model with my current settings (key, model or quota); "
            "an administrator needs to check them."
        )


class ModelUnavailable(ModelError):
    def user_message(self) -> str:
        return "The language model is unavailable right now; please try again in a minute."


class ImagesRefused(ModelError):
    def user_message(self) -> str:
        return "The language model I use cannot look at images; ask about the text instead."


class AnswerCutOff(ModelError):
    """The stream ended without saying it was finished (no finish_reason, no [DONE]).

    What arrived is kept and shown; this sentence is put under it.
    """

    def user_message(self) -> str:
        return "My answer was cut off before it was finished; ask me to continue."


def explain(error: BaseException) -> str:
    """The one sentence a user sees for any failure, ours or not."""
    if isinstance(error, BotError):
        return error.user_message()
    return BotError().user_message()
