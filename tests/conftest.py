import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def saved_pipeline(tmp_path_factory, build) -> str:
    """The folder of a random pipeline from ``build`` (a ``toy.tiny_models`` or ``toy.full_arch``
    ``build_*``), seeded and written with save_pretrained."""
    import torch

    folder = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    build(tokenizer_dir=folder / "tok").save_pretrained(folder / "pipe")
    return str(folder / "pipe")


def saved_and_loaded(tmp_path_factory, build):
    """A random pipeline from ``build``, saved with save_pretrained and loaded back by load_pipeline:
    the full-scale code path on a tiny model."""
    from minidiff.pipelines import load_pipeline

    return load_pipeline(saved_pipeline(tmp_path_factory, build), device="cpu")
