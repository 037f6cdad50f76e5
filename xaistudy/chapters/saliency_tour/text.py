"""Names the chapter's pages print."""

from __future__ import annotations

from xaistudy.explain import taxonomy as tx


def label(method: str) -> str:
    """The display name of ``method`` (``rise_np``: RISE with Petsiuk's N·p division)."""
    return "RISE (N·p)" if method == "rise_np" else tx.method_info(method)["label"]


def family(method: str) -> str:
    """The book family of ``method`` (``rise_np`` is a perturbation method, as RISE)."""
    return "perturbation" if method == "rise_np" else tx.method_info(method)["family"]


def signed(method: str) -> bool:
    """Whether ``method``'s maps are signed (``rise_np`` is not)."""
    return method != "rise_np" and tx.method_info(method)["signed"]
