"""The shapes world's checks in a lesson: asserted on the shipped tiny models, reported elsewhere.

A lesson's claims about the shipped tiny models ("tiny-sd follows prompts without CFG", "null-text
beats DDIM at w = 7.5 on these edits") are measured facts about models trained on the shapes world,
and the lesson asserts them. Run on Stable Diffusion, SD3 or Flux (``MODEL`` in the parameters cell),
the same measurements are still made and printed, but they are not the models the claims were made
of, and random tiny pipelines (the tests' full-architecture models) follow no prompt at all: there a
failed check is information, not an error. Closed-form checks (Direct Inversion reconstructs exactly)
hold on every model and stay plain ``assert`` statements.

Example::

    check = WorldChecks(MODEL, asserted=S["shapes_world"])
    check(accuracy >= 0.8, "tiny-sd follows prompts without CFG", f"{accuracy:.2f}")
"""
from __future__ import annotations


class WorldChecks:
    """Callable ``check(holds, claim, measured="")``: ``assert`` when ``asserted``, else print one line.

    ``skipped`` lists the claims reported but not asserted, for the lesson's closing summary.
    """

    def __init__(self, model: str, asserted: bool):
        self.model, self.asserted, self.skipped = model, asserted, []

    def __call__(self, holds, claim: str, measured: str = "") -> bool:
        holds = bool(holds)
        if self.asserted:
            assert holds, f"{claim}: does not hold on {self.model}" + (f" ({measured})" if measured else "")
            return holds
        self.skipped.append((claim, holds))
        print(f"[shapes-world check, not asserted on {self.model}] {claim}: "
              f"{'holds' if holds else 'does not hold'}" + (f" ({measured})" if measured else ""))
        return holds

    def report(self) -> None:
        """Say how many checks were reported without asserting, and why."""
        if self.asserted:
            print(f"every shapes-world check of this lesson was asserted on {self.model}")
            return
        held = sum(h for _, h in self.skipped)
        print(f"{len(self.skipped)} shapes-world checks reported, not asserted ({held} held): {self.model} was not trained "
              "on the shapes world, so they measure it but are not claims about it; the figures are what to look at.")
