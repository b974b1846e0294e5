"""Progress bars that stay out of headless runs."""
from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(iterable, desc: str, enabled: bool):
    """``tqdm(iterable)`` when ``enabled``, else the iterable itself.

    An enabled bar passes no ``disable`` argument, so ``TQDM_DISABLE=1`` (set by ``course.py`` when it
    executes notebooks headless) still turns it off instead of freezing it into the saved output.
    """
    return tqdm(iterable, desc=desc, leave=False) if enabled else iterable
