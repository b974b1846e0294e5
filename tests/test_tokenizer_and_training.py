"""The word-level CLIP tokenizer and the training CLI's safety."""
import pytest
from transformers import CLIPTokenizer

from toy import train
from toy.shapes import VOCAB
from minidiff._checks import check_known_words
from toy.tokenizer import build_word_tokenizer


def test_every_vocabulary_word_is_one_token(tmp_path):
    build_word_tokenizer(list(VOCAB), tmp_path)
    tok = CLIPTokenizer.from_pretrained(tmp_path)  # the real from_pretrained path
    for word in VOCAB:
        assert len(tok(word, add_special_tokens=False).input_ids) == 1, word
    ids = tok("a red circle on a blue background").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 9


def test_unknown_words_are_named(tmp_path):
    tok = build_word_tokenizer(list(VOCAB), tmp_path)
    check_known_words(tok, ["a red circle on a blue background"])
    with pytest.raises(ValueError, match="'purple'.*Known words: a, background"):
        check_known_words(tok, ["a purple circle"])


def test_training_refuses_to_overwrite_shipped_weights(tmp_path):
    existing = tmp_path / "model"
    existing.mkdir()
    with pytest.raises(SystemExit, match="--overwrite"):
        train.main(["vae", "--out", str(existing)])


def test_punctuation_is_named_as_the_cause(tmp_path):
    tok = build_word_tokenizer(list(VOCAB), tmp_path)
    with pytest.raises(ValueError, match="knows 'circle' but not the punctuation ','"):
        check_known_words(tok, ["a red circle, on a blue background"])


def test_tiny_flux_distillation_runs_and_resumes(tmp_path, monkeypatch):
    """Two short runs of the guidance-distillation recipe: the second resumes the first's checkpoint."""
    import torch

    from toy import distill, training

    monkeypatch.setattr(training, "RUNS", tmp_path)
    monkeypatch.setattr(training, "N_SCENES", 32)
    losses = []
    original = training.loop

    def recording(name, modules, loss_fn, steps, lr, save_every):
        def loss(step):
            value = loss_fn(step)
            losses.append(value.item())
            return value
        original(name, modules, loss, steps, lr, save_every)

    monkeypatch.setattr(training, "loop", recording)
    distill.train_tiny_flux(steps=2, batch=4, lr=1e-3, save_every=1)
    assert (tmp_path / "tiny-flux" / "checkpoint.pt").exists() and len(losses) == 2
    pipe = distill.train_tiny_flux(steps=3, batch=4, lr=1e-3, save_every=1)
    assert len(losses) == 3  # resumed at step 2
    assert pipe.transformer.config.guidance_embeds and torch.isfinite(torch.tensor(losses)).all()


def test_training_code_has_no_import_circle():
    """toy.training is the shared loop; toy.train (recipes) and toy.distill import it, and it imports neither."""
    import ast
    from pathlib import Path

    import toy

    def imports(name):
        tree = ast.parse((Path(toy.__file__).parent / f"{name}.py").read_text())
        return {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and not n.module for a in n.names} | \
               {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    assert not imports("training") & {"train", "distill"}
    assert "train" not in imports("distill")


def test_noisy_captions_name_wrong_words_at_the_set_rate():
    """tiny-sd-noisy's captions: each of the three words wrong with probability p, independently; every
    caption still parses and keeps its two colours distinct."""
    import numpy as np

    from toy.shapes import parse_caption, train_scenes
    from toy.train import P_WRONG_WORD, noisy_captions

    scenes = train_scenes(3000)
    captions = noisy_captions(scenes, P_WRONG_WORD)
    read = [parse_caption(c) for c in captions]
    wrong = np.array([[r.kind != s.kind, r.color != s.color, r.background != s.background] for r, s in zip(read, scenes)])
    assert np.allclose(wrong.mean(0), P_WRONG_WORD, atol=0.03)
    assert abs((~wrong.any(1)).mean() - (1 - P_WRONG_WORD) ** 3) < 0.03
    assert all(r.color != r.background for r in read)
    assert noisy_captions(scenes[:50], 0.0) == [f"a {s.color} {s.kind} on a {s.background} background" for s in scenes[:50]]


def test_init_from_starts_at_the_saved_weights_with_fresh_draws(tmp_path, monkeypatch):
    """``--init-from``: the run starts from the saved modules (not a random initialisation) and draws
    batches from another stream than the recipe's; a folder that is not a pipeline is refused by name."""
    import torch

    from toy import training

    monkeypatch.setattr(training, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(training, "N_SCENES", 16)
    first = train.train_tiny_sd(steps=1, batch=2, lr=1e-3, save_every=1)
    first.save_pretrained(tmp_path / "first")
    monkeypatch.setattr(training, "INIT", tmp_path / "first")
    continued = train.train_tiny_sd(steps=0, batch=2, lr=1e-3, save_every=1, name="tiny-sd-continued")
    for part in ("unet", "text_encoder"):
        saved = getattr(first, part).state_dict()
        assert all(torch.equal(saved[k], v) for k, v in getattr(continued, part).state_dict().items())
    assert training.generator(0).initial_seed() != 0
    monkeypatch.setattr(training, "INIT", None)
    assert training.generator(0).initial_seed() == 0
    with pytest.raises(SystemExit, match="--init-from .*model_index.json"):
        train.main(["tiny-sd", "--init-from", str(tmp_path), "--out", str(tmp_path / "out")])
