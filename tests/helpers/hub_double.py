"""A local stand-in for the Hub API, so the real CommitScheduler can run offline.

``create_repo`` only records its arguments; ``create_commit`` writes the
uploaded bytes into a local "remote" folder; a README's metadata block must
parse as YAML, where the Hub would validate it online. ``upload_folder``
selects files with the real code and sends them as one commit (the real one
hands them to a Xet upload pipeline, which needs the Hub). Everything else (scheduling,
file selection, locking, partial reads of growing files) is the real
``huggingface_hub.CommitScheduler`` code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi
from huggingface_hub.hf_api import RepoUrl


class LocalHubApi(HfApi):
    def __init__(self, remote: Path) -> None:
        super().__init__(token="hf_local_test_token")
        self.remote = remote
        self.created: list[dict[str, Any]] = []
        self.commits: list[list[str]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:  # type: ignore[override]
        self.created.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/datasets/{repo_id}", endpoint="https://huggingface.co")

    def create_commit(self, repo_id: str, operations: Any, **kwargs: Any) -> None:  # type: ignore[override]
        paths = []
        for op in operations:
            with op.as_file() as f:
                data = f.read()
            target = self.remote / op.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            paths.append(op.path_in_repo)
        self.commits.append(sorted(paths))

    def _validate_yaml(self, content: str, **kwargs: Any) -> None:
        if content.startswith("---"):
            yaml.safe_load(content.split("---", 2)[1])

    def upload_folder(self, *, repo_id: str, folder_path: str, path_in_repo: str | None = None,
                      ignore_patterns: list[str] | None = None, **kwargs: Any) -> str:  # type: ignore[override]
        additions = self._prepare_upload_folder_additions(folder_path, path_in_repo or "",
                                                          ignore_patterns=list(ignore_patterns or []),
                                                          repo_type=kwargs.get("repo_type"))
        self.create_commit(repo_id, additions)
        return f"https://huggingface.co/datasets/{repo_id}/commit/local"
