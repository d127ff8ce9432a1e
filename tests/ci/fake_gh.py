"""A stand-in for GitHub's ``gh`` CLI, run as ``gh`` from PATH by the workflow's steps.

GitHub's API is a boundary nothing here can reach, so this answers the REST routes the
workflow uses (list, create and edit issue comments) from a JSON file that holds the pull
request's comments, as GitHub would: creating with the workflow token's identity, refusing
to edit anyone else's comment, applying ``--jq`` with jq itself (so the workflow's filter is
tested for real). Every call is appended to a log. Unknown flags and routes fail, as gh does.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import jq  # type: ignore[import-not-found, unused-ignore]

BOT = "github-actions[bot]"  # who GITHUB_TOKEN comments as
COMMENTS = re.compile(r"^repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
COMMENT = re.compile(r"^repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
OPTIONS = {"--method": "method", "-X": "method", "--jq": "jq", "-q": "jq"}
FIELDS = {"--field": "typed", "-F": "typed", "--raw-field": "raw", "-f": "raw"}


def parse(argv: list[str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(endpoint, options, fields) of ``gh api ...``."""
    if argv[:1] != ["api"]:
        raise SystemExit(f"fake gh: only `gh api` is emulated, not {argv[:1]}")
    options: dict[str, str] = {}
    fields: dict[str, Any] = {}
    endpoint = ""
    args = iter(argv[1:])
    for arg in args:
        if arg == "--paginate":
            options["paginate"] = "yes"
        elif arg in OPTIONS:
            options[OPTIONS[arg]] = next(args)
        elif arg in FIELDS:
            key, _, text = next(args).partition("=")
            if FIELDS[arg] == "typed" and text.startswith("@"):  # gh reads the value from a file
                text = Path(text[1:]).read_text(encoding="utf-8")
            fields[key] = text
        elif arg.startswith("-"):
            raise SystemExit(f"fake gh: unknown flag: {arg}")
        elif endpoint:
            raise SystemExit(f"fake gh: accepts 1 arg(s), received 2: {arg}")
        else:
            endpoint = arg
    return endpoint, options, fields


def main(argv: list[str]) -> int:
    if not os.environ.get("GH_TOKEN"):
        print("gh: To use GitHub CLI in a GitHub Actions workflow, set GH_TOKEN", file=sys.stderr)
        return 4
    state = Path(os.environ["FAKE_GH_STATE"])
    comments: list[dict[str, Any]] = json.loads(state.read_text(encoding="utf-8"))
    endpoint, options, fields = parse(argv)
    # gh's own default: GET, or POST when there are fields
    method = options.get("method", "POST" if fields else "GET").upper()
    with Path(os.environ["FAKE_GH_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps({"method": method, "endpoint": endpoint, "fields": fields}) + "\n")
    listing, single = COMMENTS.match(endpoint), COMMENT.match(endpoint)
    if listing and method == "GET":
        answer: Any = comments
    elif listing and method == "POST":
        answer = {"id": max([c["id"] for c in comments] + [1000]) + 1, "user": {"login": BOT}}
        answer["body"] = fields["body"]
        comments.append(answer)
    elif single and method == "PATCH":
        found = [c for c in comments if c["id"] == int(single["id"])]
        if not found:
            print("gh: Not Found (HTTP 404)", file=sys.stderr)
            return 1
        answer = found[0]
        if answer["user"]["login"] != BOT:
            print("gh: Resource not accessible by integration (HTTP 403)", file=sys.stderr)
            return 1
        answer["body"] = fields["body"]
    else:
        print(f"gh: Not Found (HTTP 404): {method} {endpoint}", file=sys.stderr)
        return 1
    state.write_text(json.dumps(comments), encoding="utf-8")
    if "jq" in options:
        for value in jq.compile(options["jq"]).input_value(answer).all():
            print(value if isinstance(value, str) else json.dumps(value))
    else:
        print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
