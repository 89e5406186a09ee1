"""An optional prose rewriter: any OpenAI-compatible chat endpoint, configured by environment.

Nothing here runs unless ``REVSTACK_LLM_URL`` is set: ``rewriter_from_env`` then
returns ``None`` and no connection is ever opened. With it set, sentences go to
``$REVSTACK_LLM_URL/chat/completions`` (standard library only) and come back
rewritten; ``grounded`` decides whether a rewrite may replace the original: it must
keep every citation marker and add no number or name the original lacks. A rewrite
that fails the check is dropped and the deterministic sentence is kept.

Environment: ``REVSTACK_LLM_URL`` (e.g. ``http://localhost:11434/v1``),
``REVSTACK_LLM_MODEL`` (default ``gpt-4o-mini``), ``REVSTACK_LLM_API_KEY`` (optional),
``REVSTACK_LLM_TIMEOUT`` seconds (default 60).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from revstack.agents._cite import grounded

__all__ = ["OpenAICompatible", "Rewriter", "RewriteError", "grounded", "rewriter_from_env"]

# A rewriter takes sentences and returns as many rewritten sentences, in order.
Rewriter = Callable[[Sequence[str]], Sequence[str]]

_SYSTEM = (
    "You edit sales briefings. Rewrite each sentence so it reads naturally for a sales rep. "
    "Keep every citation marker such as [3] exactly as written. Do not add facts, names, "
    "numbers or dates that the sentence does not contain. Answer with only a JSON array of "
    "strings: one rewritten sentence per input sentence, in the same order."
)


class RewriteError(RuntimeError):
    """The endpoint failed or answered something that is not the expected list."""


@dataclass(frozen=True)
class OpenAICompatible:
    """POST /chat/completions; one request per batch of sentences."""

    url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def __call__(self, sentences: Sequence[str]) -> Sequence[str]:
        body = json.dumps(
            {
                "model": self.model,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": json.dumps(list(sentences))},
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url.rstrip("/") + "/chat/completions", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
            content = answer["choices"][0]["message"]["content"]
            out = json.loads(content.strip().removeprefix("```json").strip("`\n "))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise RewriteError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if (
            not isinstance(out, list)
            or len(out) != len(sentences)
            or not all(isinstance(s, str) for s in out)
        ):
            raise RewriteError(f"{self.url}: expected {len(sentences)} sentences back")
        return out


def rewriter_from_env(env: Mapping[str, str] | None = None) -> OpenAICompatible | None:
    """The configured endpoint, or None (then nothing leaves the machine)."""
    env = os.environ if env is None else env
    url = (env.get("REVSTACK_LLM_URL") or "").strip()
    if not url:
        return None
    return OpenAICompatible(
        url=url,
        model=env.get("REVSTACK_LLM_MODEL") or "gpt-4o-mini",
        api_key=env.get("REVSTACK_LLM_API_KEY") or None,
        timeout=float(env.get("REVSTACK_LLM_TIMEOUT") or 60),
    )
