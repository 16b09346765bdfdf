"""The Generate tab's inputs for a method: which show, what they hold, and the model and prompt that suit it."""

from __future__ import annotations

from collections import Counter

import gradio as gr

from playground import hosted
from playground.app.common import EXAMPLES, NUMBER_EXAMPLES
from playground.compare.drafting import compares_with_ar
from playground.engine import MAX_NEW_TOKENS
from playground.errors import PlaygroundError
from playground.methods import METHODS, Param, used
from playground.models import loading as models

NUMBER_KINDS = ("dag", "seq2seq")  # the kinds of model the numbers methods run on (models.KINDS)
CHOOSERS = ("schedule", "strategy", "tree")  # parameters whose value decides which other inputs show


def first_method() -> str:
    """The method the Generate tab opens on: EAGLE, whose first run on the default prompt is faster than
    autoregressive with identical output on a 2-core CPU (docs/BENCHMARKS.md "EAGLE and the lean runtime")."""
    return next((m for m in ("eagle", "speculative") if m in METHODS), next(iter(METHODS)))


def takes_draft(method) -> bool:
    """Show (and send) the draft model for methods that need one or can use one."""
    return method.needs_draft or method.uses_draft is not None


def draft_choices(method) -> list[str]:
    """The shipped models `method` can draft with (its draft_kinds: causal drafts, eagle's feature head, gad's
    DA-Transformers): what the draft picker offers."""
    return [name for name in models.shipped_models() if models.shipped_kind(name) in method.draft_kinds]


def method_params() -> dict[str, Param]:
    """Every method parameter by name (one input each; a name shared by methods shares its input)."""
    return {p.name: p for m in METHODS.values() for p in m.params}


SHARED = {name for name, n in Counter(p.name for m in METHODS.values() for p in m.params).items() if n > 1}


def defaults(method: str) -> dict:
    return {p.name: p.default for p in METHODS[method].params}


def param_visible(name: str, method: str, values: dict) -> bool:
    """An input shows when the method has that parameter and the parameter that chooses it (if any) allows it."""
    chosen = METHODS.get(method)
    if chosen is None or all(p.name != name for p in chosen.params):
        return False
    return used(method, name, values)


def param_updates(method: str, values: dict | None = None) -> list[dict]:
    """Updates of every parameter input for `method` (in method_params order).

    With no values given, the method was just chosen: the inputs it shares with other methods take its defaults
    and help (prompt_lookup's gamma is 8, speculative's 4), its own keep what was typed in them.
    """
    own = {p.name: p for p in METHODS[method].params}
    if values is None:
        values = defaults(method)
        return [gr.update(visible=param_visible(n, method, values),
                          **(dict(value=own[n].default, info=own[n].help) if n in own and n in SHARED else {}),
                          **(dict(choices=list(own[n].choices)) if n in own and n in SHARED and own[n].choices else {}))
                for n in method_params()]
    return [gr.update(visible=param_visible(n, method, values)) for n in method_params()]


def sampling_updates(method: str, values: dict) -> list[dict]:
    """Updates of the temperature, top-k, top-p and seed inputs: a method that decodes greedily only with these
    parameter values (dag, gad, FreeDave) sets temperature 0 and locks them, saying why; any other unlocks them."""
    chosen = METHODS[method]
    params = {**defaults(method), **{k: v for k, v in values.items() if k in defaults(method)}}
    if chosen.greedy_only and chosen.greedy_only(params):
        why = f"{method} decodes greedily" + (f" with strategy {params['strategy']}" if "strategy" in params else "")
        return [gr.update(value=0, interactive=False, info=why), *[gr.update(interactive=False)] * 3]
    return [gr.update(interactive=True, info="0 = greedy"), *[gr.update(interactive=True)] * 3]


def suited_inputs(method: str, model: str, draft: str, prompt: str) -> list[dict]:
    """Updates of the model, draft and prompt inputs for `method`: a shipped model (or draft) of a kind the method
    cannot run swaps for the shipped one it can (models.KINDS; the draft: that model's default), and an example
    prompt of the other task (code or French numbers) for this task's first example, so choosing the method is
    enough to get a run that works. What a person typed (another model, a prompt of their own) is left alone."""
    chosen = METHODS[method]
    kind = models.shipped_kind(model)
    target = models.KINDS[chosen.kinds[0]][1] if kind is not None and kind not in chosen.kinds else model
    draft_kind = models.shipped_kind(draft)
    new_draft = models.draft_for(target, None, chosen.draft_kinds[0]) if draft_kind is not None and (
        draft_kind not in chosen.draft_kinds or target != model) else draft
    numbers = models.shipped_kind(target) in NUMBER_KINDS
    examples = (EXAMPLES, NUMBER_EXAMPLES) if numbers else (NUMBER_EXAMPLES, EXAMPLES)
    return [gr.update(value=target) if target != model else gr.update(),
            gr.update(value=new_draft) if new_draft and new_draft != draft and takes_draft(chosen) else gr.update(),
            gr.update(value=examples[1][0]) if prompt in examples[0] else gr.update()]


def method_changed(name, model_name, draft_name, prompt_text):
    """Updates of the model, prompt, draft, method summary, compare checkbox, sampling and parameter inputs when
    method `name` is chosen."""
    chosen = METHODS[name]
    model_up, draft_up, prompt_up = suited_inputs(name, model_name, draft_name, prompt_text)
    return [model_up, prompt_up, {**draft_up, "visible": takes_draft(chosen), "choices": draft_choices(chosen)},
            f"*{chosen.summary}*",
            gr.update(visible=compares_with_ar(name)), *sampling_updates(name, {}),
            *param_updates(name)]


def chooser_changed(name, *values):
    """Updates of the sampling and parameter inputs when a CHOOSERS input changes (`values`: theirs, in order)."""
    values = dict(zip(CHOOSERS, values))
    return [*sampling_updates(name, values), *param_updates(name, values)]


def room_of(model: str, wanted) -> dict:
    """The max-new-tokens slider, ending where the shipped model's context does (other models: the engine's limit)."""
    room, most = models.shipped_room(model), hosted.limit("max_new_tokens", MAX_NEW_TOKENS)
    top = min(most, room) if room else most
    return gr.update(maximum=top, value=min(int(wanted or 1), top),
                     info=f"at most {top} with {model.strip()}" if room else None)


def opening_param(p: Param, method: str) -> Param:
    """Parameter `p` as the input shared by every method with that name opens: as `method` (the first) has it."""
    return next((q for q in METHODS[method].params if q.name == p.name), p)


def opening_value(p: Param, method: str):
    """The value the input of parameter `p` opens with when the tab opens on `method`."""
    p = opening_param(p, method)
    return hosted.limit(p.name, p.default) if p.min is not None else p.default


def all_choices(name: str) -> list[str]:
    """Every choice of parameter `name` over the methods that have it: Gradio refuses a value outside a dropdown's
    choices, and a program calling /generate (docs/API.md) cannot first choose the method to narrow them."""
    found = [c for m in METHODS.values() for p in m.params if p.name == name for c in p.choices or ()]
    return list(dict.fromkeys(found))


def opening_choices() -> list[dict]:
    """Updates of every parameter input (method_params order), run when a page opens: each dropdown of the opening
    method narrowed to that method's own choices. The dropdowns are made with every method's choices (all_choices)
    for programs, which never open the page; a person sees only the choices the method takes."""
    first = METHODS[first_method()]
    own = {p.name: p.choices for p in first.params if p.choices}
    return [gr.update(choices=list(own[name])) if name in own else gr.update() for name in method_params()]


def param_input(p: Param, method: str):
    """The input of parameter `p`, as `method` (the one chosen at start) sets it."""
    p = opening_param(p, method)
    common = dict(label=p.name, info=p.help, value=opening_value(p, method),
                  visible=param_visible(p.name, method, defaults(method)),
                  elem_id=f"param-{p.name}")
    if p.choices:
        return gr.Dropdown(all_choices(p.name), **common)
    if isinstance(p.default, str):
        return gr.Textbox(**common)
    top = hosted.limit(p.name, p.max) if p.max is not None else None
    if p.min is not None and top is not None and top <= p.min:  # hosted mode leaves it one value (candidates: 2)
        return gr.Number(precision=None, interactive=False, **{**common, "info": f"{p.help} (hosted mode: {top:g})"})
    if p.min is not None and p.max is not None:
        return gr.Slider(p.min, top, step=1 if isinstance(p.default, int) else None, **common)
    return gr.Number(precision=None, **common)  # not 0: Gradio would round 1.5 to 2; Param.parse refuses it


def chosen_params(method: str, values: dict) -> dict:
    """The values of the inputs that belong to `method` (the others are hidden), each one left at the tab's opening
    value that `method` cannot take (another method's `strategy`) as choosing the method would have set it: its
    default (settled_value)."""
    chosen = METHODS.get(method)
    return {p.name: settled_value(p, values.get(p.name)) for p in chosen.params} if chosen else {}


def settled_value(p: Param, value):
    """`value` of `p`'s input, or `p`'s default where the input was left at its opening value (or None) and `p`
    cannot take it. In the tab, choosing a method sets its inputs (method_changed); a program calling /generate
    sends the opening values of the inputs it leaves out, and must get the method's defaults. Any other value is
    kept, for Param.parse to refuse it in one line."""
    if value is None:
        return p.default
    if value != opening_value(method_params()[p.name], first_method()):  # the input shared by the methods
        return value
    try:
        p.parse(value)
    except PlaygroundError:
        return p.default
    return value


def settled_draft(method: str, model: str, draft: str | None) -> str | None:
    """The draft a run of `method` gets: the tab's opening draft (EAGLE's head), left in place by a program calling
    /generate, swapped for `model`'s shipped draft of the kind `method` takes, as choosing the method in the tab would
    have done (suited_inputs); anything else as given. The target is never swapped: a person who picks a model the
    method cannot run gets the engine's error that says which models it runs."""
    chosen = METHODS.get(method)
    opening = models.draft_for(models.DEFAULT_MODEL, None, METHODS[first_method()].draft_kinds[0])
    if chosen is None or draft != opening or models.shipped_kind(draft) in chosen.draft_kinds:
        return draft
    return models.draft_for(model, None, chosen.draft_kinds[0])
