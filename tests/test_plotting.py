"""The course's image grids: captions stay within their image, so neighbours never run together."""
import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from minidiff.plotting import show_images  # noqa: E402


def test_long_titles_are_wrapped_within_their_image():
    titles = ["a red circle and a blue square on a white background"] * 3 + ["a green triangle on a magenta background"] * 3
    fig = show_images(torch.zeros(6, 3, 8, 8), titles, ncols=3, size=1.2)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        title, frame = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert title.width <= frame.width * 1.05, (ax.get_title(), title.width, frame.width)
        assert "\n" in ax.get_title()
        boxes.append(title)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two captions overlap"
