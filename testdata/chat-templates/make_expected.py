"""Renders conversations.json's conversations with transformers' apply_chat_template and writes expected.json.

    python make_expected.py   # with transformers installed (checked with 5.25.0)

The template is qwen2_5.jinja as shipped in the `trl` wheel (trl 1.16.0, trl/chat_templates/qwen2_5.jinja,
Apache-2.0), the Qwen2.5 chat template, which renders the `tools` variable in the Hermes style. The tool schemas in
conversations.json have their keys sorted, the order Temper's JSON values keep (serde_json without preserve_order),
so both sides render the same text.
"""
import json
from pathlib import Path

import transformers
from transformers.utils.chat_template_utils import render_jinja_template

here = Path(__file__).parent
template = (here / "qwen2_5.jinja").read_text()
spec = json.loads((here / "conversations.json").read_text())
out = []
for conv in spec["conversations"]:
    tools = spec["tools"] if conv["tools"] else None
    rendered, _ = render_jinja_template(
        conversations=[conv["messages"]],
        tools=tools,
        chat_template=template,
        add_generation_prompt=conv["add_generation_prompt"],
    )
    out.append(rendered[0])
(here / "expected.json").write_text(
    json.dumps({"transformers": transformers.__version__, "rendered": out}, indent=1, ensure_ascii=False) + "\n"
)
