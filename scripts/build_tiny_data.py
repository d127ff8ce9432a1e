"""Write the tiny datasets the repository's recipes train on (deterministic).

    python scripts/build_tiny_data.py [OUT_DIR]    # default: data/

The tasks are simple string and arithmetic transformations, so a model of a
few hundred thousand parameters can visibly lower its loss in seconds on a
CPU. The same script always writes the same bytes; the files are tracked with
DVC (see docs/repository.md).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

WORDS = (
    "apple river stone cloud green tiger lemon piano house candle window forest "
    "orange silver bridge garden rocket pencil summer winter ocean planet yellow "
    "castle mirror rabbit violet thunder meadow copper falcon"
).split()
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "up": "down",
    "light": "dark",
    "open": "closed",
    "early": "late",
    "happy": "sad",
    "full": "empty",
    "high": "low",
}


def alpaca_rows(rng: random.Random, n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        word = rng.choice(WORDS)
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        task = i % 4
        if task == 0:
            rows.append({"instruction": "Reverse the word.", "input": word, "output": word[::-1]})
        elif task == 1:
            rows.append(
                {"instruction": "Add the two numbers.", "input": f"{a} {b}", "output": str(a + b)}
            )
        elif task == 2:
            rows.append(
                {
                    "instruction": "Write the word in capitals.",
                    "input": word,
                    "output": word.upper(),
                }
            )
        else:
            rows.append(
                {"instruction": f"Name the first letter of {word}.", "input": "", "output": word[0]}
            )
    return rows


def chat_rows(rng: random.Random, n: int) -> list[dict[str, object]]:
    rows = []
    items = sorted(OPPOSITES.items())
    for i in range(n):
        word, opposite = items[rng.randrange(len(items))]
        other = rng.choice(WORDS)
        messages: list[dict[str, str]] = []
        if i % 3 == 0:
            messages.append({"role": "system", "content": "You answer in one short sentence."})
        messages += [
            {"role": "user", "content": f"What is the opposite of {word}?"},
            {"role": "assistant", "content": f"The opposite of {word} is {opposite}."},
        ]
        if i % 2 == 0:
            messages += [
                {"role": "user", "content": f"How many letters does {other} have?"},
                {"role": "assistant", "content": f"{other} has {len(other)} letters."},
            ]
        rows.append({"messages": messages})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]] | list[dict[str, str]]) -> None:
    text = "".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")


def datasets() -> dict[str, list[dict[str, object]]]:
    """The tiny datasets by file name, rows in file order."""
    return {
        "alpaca-tiny.jsonl": alpaca_rows(random.Random(1), 96),
        "chat-tiny.jsonl": chat_rows(random.Random(2), 64),
    }


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in datasets().items():
        write_jsonl(out / name, rows)


if __name__ == "__main__":
    main(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "data"
    )
