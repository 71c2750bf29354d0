"""The shared prompt box with example buttons and its checks (length with a truncation offer, vocabulary)."""
from __future__ import annotations

import streamlit as st

from interp.model import Model
from interp.prompt_check import PromptCheck, check_prompt, example_prompts, truncate_to_fit
from ui import messages, state


def prompt_box(widget_key: str, default: str, *, height: int, help: str) -> str:
    """A text area bound to the shared prompt: typed text is kept across pages and put in the URL."""
    value = state.shared_prompt(default)
    st.session_state[widget_key] = value

    def changed() -> None:
        state.set_prompt(st.session_state[widget_key])

    return st.text_area("Prompt", key=widget_key, height=height, help=help, on_change=changed)


def prompt_section(handle: Model, key: str, height: int = 100) -> tuple[str, PromptCheck] | None:
    """Example buttons, the shared prompt box and its checks (length with a truncation offer, vocabulary).

    Returns (prompt, check) when the prompt can be run, else None after saying why. Shared by Attention and Logit
    lens, so both pages read the same prompt."""
    examples = example_prompts(handle)
    row = st.container(horizontal=True)
    row.caption(f"Examples for {handle.info.name}:")
    for i, (label, text) in enumerate(examples.items()):
        row.button(label, key=f"{key}_ex{i}", on_click=state.set_prompt, args=(text,))
    prompt = prompt_box(key, next(iter(examples.values())), height=height,
                               help=f"Up to {handle.info.n_ctx} tokens for {handle.info.name}.")
    check = messages.guarded(check_prompt, handle, prompt)
    if check is None:
        return None
    if check.too_long:
        st.error(check.length_message)
        cut = messages.guarded(truncate_to_fit, handle, prompt)
        if cut is not None:
            st.button(f"Keep the first {handle.info.n_ctx} tokens", key=f"{key}_truncate", type="primary",
                      on_click=state.set_prompt, args=(cut,))
        return None
    if check.vocab_warning:
        st.warning(check.vocab_warning)
    return prompt, check
