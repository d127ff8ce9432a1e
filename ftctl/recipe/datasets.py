"""Dataset entries of a recipe, one model per ``type:`` (a closed list).

Field names and defaults follow Axolotl, so an Axolotl ``datasets:`` block is
a valid one here. A type Axolotl has dropped or that ftctl does not load is
rejected with a pointer to the type to use instead.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ftctl.recipe.names import ChatTemplateName

NonEmptyStr = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), allow_inf_nan=False
    )


class _Source(_Strict):
    """Where rows come from: a DVC-tracked or local path, or a Hub dataset id[@revision]."""

    path: NonEmptyStr = Field(
        description="DVC-tracked or local file/directory, or a Hub dataset id with optional @revision"
    )
    name: str | None = Field(None, description="Hub dataset configuration name")
    split: NonEmptyStr = Field("train", description="split to read")
    data_files: list[NonEmptyStr] | None = Field(None, description="files inside path to read")
    ds_type: Literal["json", "jsonl", "parquet", "csv", "arrow", "text"] | None = Field(
        None, description="file format when the extension does not tell"
    )


class AlpacaDataset(_Source):
    """Rows ``{instruction, input?, output}``; the prompt is masked unless train_on_inputs."""

    type: Literal["alpaca"]


class MessageMappings(_Strict):
    role: NonEmptyStr = "role"
    content: NonEmptyStr = "content"


class ChatTemplateDataset(_Source):
    """Rows ``{messages: [{role, content}]}`` rendered by a chat template."""

    type: Literal["chat_template"]
    field_messages: NonEmptyStr = "messages"
    message_property_mappings: MessageMappings = MessageMappings()
    message_field_training: NonEmptyStr = "training"
    roles_to_train: list[NonEmptyStr] = Field(default_factory=lambda: ["assistant"])
    train_on_eos: Literal["turn", "last", "all", "none"] = "turn"
    roles: dict[str, list[NonEmptyStr]] | None = Field(
        None, description="map source role names onto user/assistant/system"
    )
    drop_system_message: bool = False
    chat_template: ChatTemplateName | None = Field(
        None, description="overrides the recipe's chat_template for this dataset"
    )


class CompletionDataset(_Source):
    """Rows ``{text}``; every token is trained; split into sequence_len chunks."""

    type: Literal["completion"]
    field: NonEmptyStr = "text"


class InputOutputDataset(_Source):
    """Rows ``{segments: [{label: bool, text}]}``; segments with label false are masked."""

    type: Literal["input_output"]


class PairedPreferenceDataset(_Source):
    """DPO/IPO/ORPO rows ``{prompt, chosen, rejected}`` (field names remappable)."""

    type: Literal["dpo"]
    field_prompt: NonEmptyStr = "prompt"
    field_chosen: NonEmptyStr = "chosen"
    field_rejected: NonEmptyStr = "rejected"


class ChatTemplatePreferenceDataset(_Source):
    """Axolotl's ``chat_template.default`` DPO rows: a conversation, then chosen and rejected turns.

    The prompt is the conversation rendered by the chat template up to the assistant's turn;
    each answer is its turn as the template renders it (as Axolotl's strategy does).
    """

    type: Literal["chat_template.default"]
    field_messages: NonEmptyStr = Field(
        "messages", description="the conversation before the answers"
    )
    field_chosen: NonEmptyStr = Field(
        "chosen", description="the preferred answer: text or a message"
    )
    field_rejected: NonEmptyStr = Field(
        "rejected", description="the rejected answer: text or a message"
    )
    message_property_mappings: MessageMappings = MessageMappings()
    roles: dict[str, list[NonEmptyStr]] | None = Field(
        None, description="map source role names onto user/assistant/system/tool"
    )
    chat_template: ChatTemplateName | None = Field(
        None, description="overrides the recipe's chat_template for this dataset"
    )


class IntelPreferenceDataset(_Source):
    """Axolotl's ``chatml.intel`` mapper: rows ``{system?, question, chosen, rejected}``."""

    type: Literal["chatml.intel"]


class KTODataset(_Source):
    """KTO rows ``{prompt, completion, label: bool}`` (field names remappable)."""

    type: Literal["kto"]
    field_prompt: NonEmptyStr = "prompt"
    field_completion: NonEmptyStr = "completion"
    field_label: NonEmptyStr = "label"


DatasetEntry = Annotated[
    AlpacaDataset
    | ChatTemplateDataset
    | CompletionDataset
    | InputOutputDataset
    | PairedPreferenceDataset
    | ChatTemplatePreferenceDataset
    | IntelPreferenceDataset
    | KTODataset,
    Field(discriminator="type"),
]

SFT_TYPES = frozenset({"alpaca", "chat_template", "completion", "input_output"})
PAIRED_TYPES = frozenset({"dpo", "chat_template.default", "chatml.intel"})
KTO_TYPES = frozenset({"kto"})
DATASET_TYPES = SFT_TYPES | PAIRED_TYPES | KTO_TYPES

# Types users bring from Axolotl that ftctl maps elsewhere: the pointer is the error's hint.
DATASET_TYPE_POINTERS = {
    "sharegpt": (
        "use type: chat_template with field_messages: conversations and "
        "message_property_mappings: {role: from, content: value}"
    ),
    "pretrain": "use pretraining_dataset, or type: completion for a finite text corpus",
    "chat_template.argilla": "use type: dpo for {prompt, chosen, rejected} rows",
    "llama3.prompt_pairs": "use type: dpo for {prompt, chosen, rejected} rows",
    "user_defined": "use type: dpo or kto and map the columns with field_prompt, field_chosen, ...",
}
