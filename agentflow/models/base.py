"""The model protocol: one method, typed messages in, a typed response out.

Messages follow the Anthropic Messages shape (role + content blocks) because it is the richest
common denominator; other backends translate from it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from agentflow.errors import BackendError
from agentflow.events import Usage


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str
    cache: bool = False  # a prompt-cache breakpoint ends at this block


class ToolUseBlock(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = {}


class ToolResultBlock(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


Block = Annotated[TextBlock | ToolUseBlock | ToolResultBlock, Field(discriminator="type")]


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: list[Block]

    @classmethod
    def user(cls, text: str, cache: bool = False) -> Message:
        return cls(role="user", content=[TextBlock(text=text, cache=cache)])


class ToolSpec(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]


class ModelRequest(BaseModel):
    system: list[TextBlock]  # the stable prefix: mark the last block ``cache=True``
    messages: list[Message]
    tools: list[ToolSpec] = []
    max_tokens: int = 8192


class ModelResponse(BaseModel):
    content: list[TextBlock | ToolUseBlock]
    stop_reason: str | None = None  # end_turn | tool_use | max_tokens | ...
    usage: Usage = Usage()
    cost_usd: float = 0.0
    model: str = ""
    retries: int = 0  # transient failures the backend retried before this reply

    @property
    def tool_calls(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


@runtime_checkable
class Model(Protocol):
    """A model backend. ``complete`` raises ``BackendError`` when no reply could be obtained."""

    name: str

    def complete(self, request: ModelRequest) -> ModelResponse: ...


class ModelError(BackendError):
    """The backend failed after its retries; the session ends as a backend failure (exit 3)."""
