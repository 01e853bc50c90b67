#!/usr/bin/env python3
"""Render chat-template fixtures for Vazhi's Rust template engine, independently, with jinja2.

What it does
    For each test model it reads `tokenizer.chat_template` and the BOS/EOS token texts
    (`tokenizer.ggml.bos_token_id` / `eos_token_id` -> `tokenizer.ggml.tokens[id]`) from the
    GGUF file, then renders a fixed set of conversations exactly the way Hugging Face
    `transformers` does (`transformers.utils.chat_template_utils._compile_jinja_template`):

        ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[jinja2.ext.loopcontrols])
        globals: raise_exception (raises TemplateError), strftime_now (datetime.now().strftime)
        filters: tojson (json.dumps, ensure_ascii=False, no HTML escaping)
        variables: messages, add_generation_prompt, bos_token, eos_token

    (transformers also registers an `AssistantTracker` extension for `{% generation %}` blocks;
    neither template here uses it. transformers passes `tools=None, documents=None` too; these
    templates do not look at them.)

    It writes one JSON file per model to core/tests/fixtures/chat_templates/ (pretty-printed,
    UTF-8, ensure_ascii=False):

        {"model_file", "template_source", "template_sha256", "chat_template",
         "bos_token", "eos_token",
         "cases": [{"name", "messages", "add_generation_prompt",
                    "expected": "..."            # the rendered prompt, or
                    "error": true, "error_message": "..."}]}   # the template refused it

    `template_sha256` is the SHA-256 of the template string (UTF-8). `chat_template` carries the
    template itself so the Rust tests need no model file.

    The Gemma 3 GGUF used here (gemma-3-270m-q4_k_m.gguf, converted from the *base*
    google/gemma-3-270m by GGUF-my-repo) has NO `tokenizer.chat_template`. For it the script
    falls back to Google's Gemma 3 template (the `chat_template` of google/gemma-3-*-it's
    tokenizer_config.json, copied below) and says so in `template_source`. A model listed
    without a fallback and without a template is an error.

How to run
    pip install jinja2 gguf          # gguf-py from PyPI (tested: jinja2 3.1.6, gguf 0.19.0);
                                     # or PYTHONPATH=<llama.cpp>/gguf-py instead of `gguf`
    python3 scripts/render-template-fixtures.py [--models DIR] [--out DIR]

    --models  model cache (default: $VAZHI_MODELS or ~/.cache/vazhi/models)
    --out     output folder (default: core/tests/fixtures/chat_templates next to this script)

Re-running with the same models gives byte-identical files (no template here calls
strftime_now).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path

try:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:  # pragma: no cover
    sys.exit("needs jinja2: pip install jinja2")
try:
    import gguf
except ImportError:  # pragma: no cover
    sys.exit("needs gguf-py: pip install gguf (or PYTHONPATH=<llama.cpp>/gguf-py)")

# Google's Gemma 3 chat template (google/gemma-3-*-it tokenizer_config.json "chat_template").
GEMMA3_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    '    {%- set first_user_prefix = "" -%}\n'
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    '        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}\n'
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    '        {%- set role = "model" -%}\n'
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    '        {{ raise_exception("Invalid content type") }}\n'
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)

# (fixture name, GGUF file, fallback template or None, where the fallback comes from)
MODELS = [
    ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", None, None),
    (
        "gemma3",
        "gemma-3-270m-q4_k_m.gguf",
        GEMMA3_TEMPLATE,
        "fallback: the GGUF has no tokenizer.chat_template; Google's Gemma 3 template "
        "(google/gemma-3-*-it tokenizer_config.json chat_template)",
    ),
]


def u(text):
    return {"role": "user", "content": text}


def s(text):
    return {"role": "system", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


CONVERSATIONS = [
    ("single_user", [u("Hello!")]),
    ("system_user", [s("You are a concise assistant."), u("What is 2+2?")]),
    (
        "multi_turn",
        [
            s("You are a concise assistant."),
            u("What is the capital of France?"),
            a("Paris."),
            u("And of Italy?"),
        ],
    ),
    ("tamil", [u("திருக்குறள் முதல் குறளை விளக்குக")]),
    ("whitespace", [u("  spaced\n\n")]),
    # Roles that do not alternate: Gemma 3 raises; SmolLM2 renders them as they are.
    ("non_alternating_roles", [u("First."), u("Second.")]),
]


# --- the environment transformers builds -------------------------------------------------


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers overrides jinja's tojson: no HTML escaping, json.dumps options exposed.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source: str):
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


# --- GGUF ----------------------------------------------------------------------------------


def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def read_gguf(path: Path):
    reader = gguf.GGUFReader(str(path))
    template = field(reader, "tokenizer.chat_template")
    tokens = field(reader, "tokenizer.ggml.tokens")
    bos_id = field(reader, "tokenizer.ggml.bos_token_id")
    eos_id = field(reader, "tokenizer.ggml.eos_token_id")
    if tokens is None or bos_id is None or eos_id is None:
        raise SystemExit(f"{path}: missing tokenizer.ggml.tokens / bos_token_id / eos_token_id")
    return template, tokens[bos_id], tokens[eos_id]


def render_cases(template, bos, eos):
    cases = []
    for name, messages in CONVERSATIONS:
        for gen in (True, False):
            case = {
                "name": f"{name}{'' if gen else '_no_gen'}",
                "messages": messages,
                "add_generation_prompt": gen,
            }
            try:
                case["expected"] = template.render(
                    messages=messages, add_generation_prompt=gen, bos_token=bos, eos_token=eos
                )
            except jinja2.exceptions.TemplateError as e:
                case["error"] = True
                case["error_message"] = str(e)
            cases.append(case)
    return cases


def main():
    here = Path(__file__).resolve().parent
    default_models = os.environ.get("VAZHI_MODELS") or str(Path.home() / ".cache/vazhi/models")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=default_models, help="folder holding the GGUF files")
    ap.add_argument(
        "--out",
        default=str(here.parent / "core/tests/fixtures/chat_templates"),
        help="where to write <name>.json",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    for name, model_file, fallback, fallback_source in MODELS:
        path = Path(args.models) / model_file
        if not path.is_file():
            raise SystemExit(f"{path}: not found (scripts/setup --models fetches it)")
        source, bos, eos = read_gguf(path)
        if source is not None:
            origin = "gguf: tokenizer.chat_template"
        elif fallback is not None:
            source, origin = fallback, fallback_source
        else:
            raise SystemExit(f"{path}: no tokenizer.chat_template and no fallback")
        cases = render_cases(compile_template(source), bos, eos)
        fixture = {
            "model_file": model_file,
            "template_source": origin,
            "template_sha256": hashlib.sha256(source.encode("utf-8")).hexdigest(),
            "chat_template": source,
            "bos_token": bos,
            "eos_token": eos,
            "cases": cases,
        }
        dest = out / f"{name}.json"
        dest.write_text(json.dumps(fixture, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        errors = sum(1 for c in cases if c.get("error"))
        print(f"{dest}: {len(cases)} cases ({errors} rejected), template from {origin.split(';')[0]}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
