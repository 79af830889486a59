#!/usr/bin/env python3
"""A mutation pass: break one claim of the library at a time and check that a test fails.

  python bench/mutations.py                 # every mutation, a markdown table at the end (TESTING.md)
  python bench/mutations.py --only 1,7      # some of them
  python bench/mutations.py --list

Each mutation replaces one exact piece of code (it must occur once) in a copy of the committed tree
(git archive HEAD, with ../shared beside it) and runs only the tests meant to catch it. A mutant is
caught when those tests fail; a mutation whose code is gone (the text no longer occurs) is reported as
stale, to be updated with the code. Run it again whenever a core module changes.
"""

from brushwork import cli
from brushwork.schemas.bench import MutationsConfig

if __name__ == "__main__":
    cli.help_before_imports(cli.Command(MutationsConfig, None, __doc__))

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


EFFECTS = "tests/test_effects.py::"
ADAIN = "tests/test_adain_pipeline.py::"
MUTATIONS = (
    Mutation("Accelerator precision forced to 'no'", "brushwork/training/accel.py",
             "mixed_precision=settings.mixed_precision,", 'mixed_precision="no",',
             (EFFECTS + "test_the_launchers_bf16_reaches_the_activations_and_fp32_is_bit_identical",)),
    Mutation("generator not applied in translate", "brushwork/evaluation/translate.py",
             "y = net(padded, **kwargs)[..., :h, :w]", "y = padded[..., :h, :w]",
             ("tests/test_translate.py::test_translated_pixels_are_the_generator_applied_at_full_resolution",)),
    Mutation("wrong lr and betas in the fused Adam branch", "brushwork/training/base.py",
             "lr=self.cfg.lr, betas=(self.cfg.beta1, self.cfg.beta2),",
             "lr=self.cfg.lr * (2 if self.fused_adam else 1), betas=(0.9, 0.999) if self.fused_adam else "
             "(self.cfg.beta1, self.cfg.beta2),",
             (EFFECTS + "test_the_trainers_fused_and_unfused_adam_end_in_the_same_state",)),
    Mutation("--compile ignored", "brushwork/training/accel.py", 'if compile else "no"', 'if False else "no"',
             (EFFECTS + "test_the_launchers_dynamo_backend_and_compile_flag_compile_the_networks",)),
    Mutation("the launcher's dynamo backend ignored", "brushwork/training/accel.py",
             'launcher_backend = (os.environ.get("ACCELERATE_DYNAMO_BACKEND") or "no").lower()',
             'launcher_backend = "no"',
             (EFFECTS + "test_the_launchers_dynamo_backend_and_compile_flag_compile_the_networks",)),
    Mutation("stylize does not apply the network", "eval/stylize.py",
             "y = net(padded, weights.to(device).expand(len(images), -1))[..., :h, :w]", "y = padded[..., :h, :w]",
             ("tests/test_fast_style.py::test_stylized_pixels_are_the_network_applied_at_full_resolution",)),
    Mutation("the cycle loss of domain A dropped", "brushwork/training/cyclegan.py",
             '"cycle_A": losses.cycle_loss(rec_A, real_A, cfg.lambda_a),',
             '"cycle_A": 0 * losses.cycle_loss(rec_A, real_A, cfg.lambda_a),',
             ("tests/test_networks.py::test_a_trainer_step_equals_the_original_codes_optimize_parameters",)),
    Mutation("the discriminator loss not halved", "brushwork/models/losses.py",
             "return 0.5 * (gan_loss(d_real, True, mode) + gan_loss(d_fake, False, mode))",
             "return gan_loss(d_real, True, mode) + gan_loss(d_fake, False, mode)",
             ("tests/test_networks.py::test_a_trainer_step_equals_the_original_codes_optimize_parameters",)),
    Mutation("a slot's rank and worker swapped", "brushwork/data/stream.py",
             "rank, role = divmod(slot, self.workers)", "role, rank = divmod(slot, self.workers)",
             ("tests/test_data.py",)),
    Mutation("the learning rate frozen", "brushwork/training/schedule.py",
             "return base_lr * lr_factor(epoch_of(images_seen, epoch_images), n_epochs, n_epochs_decay)",
             "return base_lr",
             ("tests/test_losses.py::test_lr_at_every_epoch_equals_the_original_lambdalr",)),
    Mutation("--no_flip ignored", "brushwork/data/stream.py", "if aug.flip and rng.random() < 0.5:",
             "if rng.random() < 0.5:", ("tests/test_data.py::test_flip_off_never_flips",)),
    Mutation("the optimiser state not written to a checkpoint", "brushwork/training/checkpoint.py",
             '_save(state["optim"], tmp / "optim.pt")', "pass",
             ("tests/test_checkpoint.py",)),
    Mutation("the manifest not checked", "brushwork/data/shards.py",
             "manifest = records.parse_json(data, records.Manifest,",
             "manifest = json.loads(data) or records.parse_json(data, records.Manifest,",
             ("tests/test_data.py::test_a_damaged_manifest_is_one_line_naming_the_field",)),
    Mutation("the Gatys style term dropped", "brushwork/gatys/objective.py",
             '+ t.style_weight[idx] * p["style"] +', '+ 0 * p["style"] +',
             ("tests/test_gatys.py::test_reference_case_reproduced",)),
    Mutation("--normalize_gradients ignored", "brushwork/gatys/objective.py",
             "if self.normalize_gradients else feats[layer]", "if False else feats[layer]",
             ("tests/test_gatys.py::test_normalized_gradients_pull_each_layer_with_its_weight_alone",)),
    Mutation("the image pool never swaps", "brushwork/models/pool.py",
             "elif torch.rand((), generator=self.generator) > 0.5:", "elif False:",
             ("tests/test_losses.py::test_pool_fills_then_swaps_half_the_time_and_resumes_exactly",)),
    Mutation("a rerun with other settings not refused", "brushwork/evaluation/apply.py",
             "    if not cfg.overwrite:\n        refuse_changes(out, changed)", "    pass",
             ("tests/test_translate.py::test_a_rerun_with_other_settings_weights_or_inputs_is_refused_and_overwrite"
              "_re_renders",)),
    Mutation("a multi-style net's samples show one style", "brushwork/training/fast_style.py",
             "k = min(len(self.styles), SAMPLE_STYLES)", "k = 1",
             ("tests/test_fast_style.py::test_samples_show_every_style_with_its_image_above_its_result",)),
    Mutation("the survey page scales every image to 256 px", "brushwork/evaluation/survey/package.py",
             "page(survey_id, order, title, size))", "page(survey_id, order, title, 256))",
             ("tests/test_survey.py::test_package_leaks_nothing",)),
    Mutation("TensorBoard's axis back to steps", "brushwork/training/trainer.py",
             "self.acc.log(scalars, step=c.images_seen)", "self.acc.log(scalars, step=c.step)",
             ("tests/test_train_cyclegan.py::test_two_processes_stay_in_sync_and_log_to_tensorboard",)),
    Mutation("the schedule's end counted in steps again", "brushwork/training/trainer.py",
             "end_step = c.step + math.ceil(max(0, total_images - c.images_seen) / self.global_batch)",
             "end_step = math.ceil(total_images / self.global_batch)",
             ("tests/test_train_cyclegan.py::test_resume_on_another_world_size_keeps_the_lr_schedule",)),
    Mutation("a changed raw folder re-sharded under a resume", "brushwork/training/trainer.py",
             "rebuild=not resuming)", "rebuild=True)",
             ("tests/test_train_cyclegan.py::test_a_raw_image_folder_is_sharded_once_into_the_runs_cache",)),
    Mutation("--style_scale ignored", "brushwork/gatys/gatys_run.py",
             "style_hw(hw, pair.cfg.style_scale) for hw in hws", "style_hw(hw, 1.0) for hw in hws",
             ("tests/test_gatys_runner.py::test_neural_style_options_style_scale_init_image_and_normalized_gradients",)),
    Mutation("AdaIN's inverse LR decay ignored", "brushwork/training/schedule.py",
             "return base_lr / (1.0 + decay * images_seen / per)", "return base_lr",
             (ADAIN + "test_the_learning_rate_is_the_papers_inverse_decay_counted_in_images",)),
    Mutation("AdaIN's style stream reads the content domain", "brushwork/training/adain.py",
             '("style", cfg.style_data or cfg.data, cfg.style_domain)',
             '("style", cfg.content_data or cfg.data, cfg.content_domain)',
             (ADAIN + "test_the_learning_rate_is_the_papers_inverse_decay_counted_in_images",)),
    Mutation("AdaIN's alpha ignored", "brushwork/models/adain.py",
             "return alpha * t + (1 - alpha) * fc, fc", "return t, fc",
             ("tests/test_adain.py::test_alpha_zero_is_the_decoder_of_the_contents_own_features_and_weights_pick_a_style",)),
    Mutation("stylize ignores --preserve_color", "eval/stylize.py", "if cfg.preserve_color:", "if False:",
             (ADAIN + "test_stylize_interpolates_trades_off_and_keeps_colours",)),
)


def snapshot(into: Path) -> Path:
    """The committed tree (git archive HEAD) under ``into``/repo, with ../shared beside it as the tests expect."""
    tar = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    root = into / "repo"
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(root, filter="data")
    shared = REPO.parent / "shared"
    if shared.exists():
        (into / "shared").symlink_to(shared)
    return root


def run_one(root: Path, m: Mutation, timeout: int) -> tuple[str, float]:
    path = root / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        return "stale (the code changed: update the mutation)", 0.0
    path.write_text(original.replace(m.old, m.new))
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
                              cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        outcome = {0: "NOT CAUGHT", 1: "caught"}.get(proc.returncode, f"error (pytest exit {proc.returncode})")
    except subprocess.TimeoutExpired:
        outcome = "NOT CAUGHT (timed out)"
    finally:
        path.write_text(original)
    return outcome, time.perf_counter() - start


def run(cfg: MutationsConfig) -> int:
    chosen = [(i, m) for i, m in enumerate(MUTATIONS, 1)
              if not cfg.only or str(i) in cfg.only or m.name in cfg.only]
    if cfg.list:
        for i, m in chosen:
            print(f"{i:2d}. {m.name} ({m.path}): {', '.join(m.tests)}")
        return 0
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True).stdout.strip()
    if dirty:
        print("mutations: the tree has uncommitted changes; mutating the committed tree (HEAD)", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutations_") as tmp:
        root = snapshot(Path(tmp))
        for i, m in chosen:
            outcome, seconds = run_one(root, m, cfg.timeout)
            rows.append((i, m, outcome, seconds))
            print(f"{i:2d}. {m.name}: {outcome} ({seconds:.0f} s)", flush=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    print(f"\ncommit {head.strip()}, {time.strftime('%Y-%m-%d')}\n")
    print("| # | mutation | file | caught by | result | s |\n| --- | --- | --- | --- | --- | --- |")
    for i, m, outcome, seconds in rows:
        tests = ", ".join(t.split("::")[-1] if "::" in t else t for t in m.tests)
        print(f"| {i} | {m.name} | `{m.path}` | {tests} | {outcome} | {seconds:.0f} |")
    missed = [m.name for _, m, outcome, _ in rows if outcome != "caught"]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} mutants caught" + (f"; not: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


COMMAND = cli.Command(MutationsConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
