"""The ReAct text protocol (Thought / Action / Action Input / Final Answer) for models that cannot
call tools through the server, read by a strict parser: one action with a JSON object, or a final
answer, nothing in between."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReactStep:
    thought: str = ""
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    final: str | None = None


class ReactFormatError(ValueError):
    pass


def parse_react(text: str, tool_names: list[str]) -> ReactStep:
    """Strictly read one ReAct reply: exactly one action with a JSON object, or a final answer."""
    thought = re.search(r"(?im)^\s*Thought\s*:\s*(.*)$", text)
    step = ReactStep(thought=thought.group(1).strip() if thought else "")
    final = re.search(r"(?ims)^\s*Final Answer\s*:\s*(.*)", text)
    actions = re.findall(r"(?im)^\s*Action\s*:\s*(.*)$", text)
    if final and actions:
        raise ReactFormatError("reply has both an Action and a Final Answer; give one of them")
    if final:
        step.final = final.group(1).strip()
        if not step.final:
            raise ReactFormatError("the Final Answer is empty")
        return step
    if not actions:
        raise ReactFormatError("reply has neither 'Action:' nor 'Final Answer:'")
    if len(actions) > 1:
        raise ReactFormatError("reply has more than one Action; use one tool at a time")
    name = actions[0].strip().strip("`")
    if name not in tool_names:
        raise ReactFormatError(f"unknown tool '{name}'; tools are: {', '.join(tool_names)}")
    raw = re.search(r"(?ims)^\s*Action Input\s*:\s*(.*)", text)
    if not raw:
        raise ReactFormatError("the Action has no 'Action Input:' line")
    body = raw.group(1).strip().strip("`").removeprefix("json").strip()
    try:
        args, _ = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError as e:
        raise ReactFormatError(f"Action Input is not a JSON object ({e.msg})") from None
    if not isinstance(args, dict):
        raise ReactFormatError("Action Input must be a JSON object, e.g. {\"query\": \"...\"}")
    step.action, step.args = name, args
    return step
