"""docs/training.md's recipe table says what the code does."""

from __future__ import annotations

from conftest import REPO

from keras_resnet import training as T


def _recipe_rows() -> dict[str, list[str]]:
    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 13:
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_recipe_table_matches_the_code():
    rows = _recipe_rows()
    assert sorted(rows) == T.list_recipes()
    for name, cells in rows.items():
        opt, lr, _, warmup, epochs, batch, wd, ls, ema, augment, size, val = cells
        cfg = T.get_recipe(name)
        assert opt.split(",")[0].lower() == cfg.optimizer, name
        assert ("Nesterov" in opt) == cfg.nesterov, name
        assert float(lr.split()[0]) == cfg.learning_rate, name
        assert ("batch / 256" in lr) == cfg.scale_lr_with_batch, name
        assert float(warmup) == cfg.warmup_epochs and int(epochs) == cfg.epochs, name
        assert int(batch) == cfg.batch_size and float(wd) == cfg.weight_decay, name
        assert float(ls) == cfg.label_smoothing and (ema == "yes") == cfg.use_ema, name
        assert augment.split()[0] == cfg.augment and float(val) == cfg.validation_fraction, name
        native = cfg.image_size is None
        assert size == "native" if native else size == "{}x{}".format(*cfg.image_size), name
