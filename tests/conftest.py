import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def saved_and_loaded(tmp_path_factory, build):
    """A random pipeline from ``build`` (a ``toy.tiny_models.build_*``), saved with save_pretrained and
    loaded back by load_pipeline: the full-scale code path on a tiny model."""
    import torch

    from minidiff.pipelines import load_pipeline

    folder = tmp_path_factory.mktemp("pipeline")
    torch.manual_seed(0)
    build(tokenizer_dir=folder / "tok").save_pretrained(folder / "pipe")
    return load_pipeline(str(folder / "pipe"), device="cpu")
