"""Does warmstart's MLM learn like Hugging Face's BertForMaskedLM? Same batches, same optimizer.

    python benchmarks/mlm_learning_parity.py --corpus ../shared/data/en/imdb/unsup.txt.gz

Both sides train the same shape (``--size``) from scratch on exactly the same masked batches
(made by warmstart's MLM objective), with AdamW, warmup and linear decay, clipping at 1.0,
and report the validation loss over [MASK] positions only (the positions where the input
gives no hint) every 100 steps. If both curves match, how fast an encoder learns on a small
budget is a property of BERT-style pretraining, not of this implementation. ``--json PATH``
also writes both curves, with the run's provenance (commit, settings, CPU, versions, date). A
tokenizer left in ``--work`` by an earlier run is reused only if made on the same commit, CPU,
corpus and ``--docs``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from provenance import describe, keep_folder, stamp, stamp_folder, write_json
from torch.nn import functional as F

if TYPE_CHECKING:
    from warmstart.objectives.mlm import MaskedLM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="../shared/data/en/imdb/unsup.txt.gz")
    ap.add_argument("--docs", type=int, default=3000, help="first N documents of the corpus")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--work", default=None, help="folder for the tokenizer and shards")
    ap.add_argument("--json", help="also write both curves, with their provenance, to this file")
    args = ap.parse_args()
    settings = {k: v for k, v in vars(args).items() if k not in ("work", "json")}
    prov = stamp(settings, "transformers", "tokenizers")
    print(describe(prov), flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="warmstart-parity-"))
    work.mkdir(parents=True, exist_ok=True)
    sample = work / "docs.txt"
    opener = gzip.open if args.corpus.endswith(".gz") else open
    with opener(args.corpus, "rt", encoding="utf-8") as f:
        sample.write_text("".join(itertools.islice(f, args.docs)), encoding="utf-8")
    # A tokenizer an earlier run left in --work: only if made of this sample by this code.
    made = {"corpus": args.corpus, "docs": args.docs}
    if not keep_folder(work / "tokenizer", made):
        stamp_folder(work / "tokenizer", made, "tokenizers")
    curves = {side: run(side, sample, work, args) for side in ("warmstart", "transformers")}
    print(f"\nvalidation loss at [MASK] positions, {args.size}, seq {args.seq_len}, batch 32, "
          f"lr {args.lr}")
    print(f"{'step':>5} {'warmstart':>10} {'transformers':>13}")
    for (step, a, _), (_, b, _) in zip(curves["warmstart"], curves["transformers"], strict=True):
        print(f"{step:>5} {a:>10.3f} {b:>13.3f}")
    print(f"seconds: warmstart {curves['warmstart'][-1][2]:.0f}, "
          f"transformers {curves['transformers'][-1][2]:.0f}")
    if args.json:
        write_json(args.json, {"results": {side: [{"step": step, "valid_mask_loss": loss,
                                                   "seconds": secs} for step, loss, secs in curve]
                                           for side, curve in curves.items()}, **prov})


def run(side: str, sample: Path, work: Path, args: argparse.Namespace) -> list[tuple[int, float, float]]:
    from warmstart.corpus import Corpus
    from warmstart.models.transformer import TransformerConfig
    from warmstart.objectives import make_objective
    from warmstart.objectives.base import ObjectiveConfig, SpecialTokens
    from warmstart.sequences import PackedSequences, PretrainBatches
    from warmstart.shards import build_shards
    from warmstart.tokenize.subword import train_tokenizer
    from warmstart.train.loop import TrainConfig, learning_rate
    from warmstart.train.optim import param_groups

    torch.set_flush_denormal(True)
    tok_dir = work / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(Corpus([str(sample)]), out=str(tok_dir), model="wordpiece",
                        vocab_size=8000, min_frequency=2, lowercase=True,
                        progress=False)
    import tokenizers

    tok = tokenizers.Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    special = SpecialTokens.of(tok)
    vocab = tok.get_vocab_size()
    train, valid = build_shards(Corpus([str(sample)]), tok, cache_dir=work / "shards",
                                progress=False)
    rows = PackedSequences(train, seq_len=args.seq_len, bos_id=special.cls, eos_id=special.sep)
    valid_rows = PackedSequences(valid, seq_len=args.seq_len, bos_id=special.cls,
                                 eos_id=special.sep)
    cfg = TransformerConfig.sized(args.size, vocab_size=vocab, pad_id=special.pad)
    torch.manual_seed(0)
    # make_objective("mlm") makes a MaskedLM (typed as the Objective base, which has no
    # encoder or head)
    objective = cast("MaskedLM", make_objective("mlm", cfg, tokenizer=tok,
                                                settings=ObjectiveConfig()))
    batches = PretrainBatches(objective, rows, valid_rows, batch_size=32, seed=0)

    def masked_only(logits: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        at_mask = inputs == special.mask
        return F.cross_entropy(logits[at_mask].float(), labels[at_mask])

    if side == "transformers":
        from transformers import BertConfig, BertForMaskedLM

        # attn_implementation is a PretrainedConfig keyword at run time; BertConfig's
        # signature does not list it.
        model = BertForMaskedLM(BertConfig(  # type: ignore[call-arg]
            vocab_size=vocab, hidden_size=cfg.hidden, num_hidden_layers=cfg.n_layers,
            num_attention_heads=cfg.n_heads, intermediate_size=cfg.ffn, pad_token_id=special.pad,
            max_position_embeddings=cfg.max_positions, attn_implementation="sdpa")).train()

        def losses(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits = model(input_ids=inputs, attention_mask=(inputs != special.pad).long()).logits
            chosen = labels != -100
            return (F.cross_entropy(logits[chosen], labels[chosen]),
                    masked_only(logits[chosen], inputs[chosen], labels[chosen]))
    else:
        model = objective

        def losses(inputs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = objective.encoder(inputs, attention_mask=inputs != special.pad)
            chosen = labels != -100
            logits = objective.head(hidden[chosen])
            return (F.cross_entropy(logits, labels[chosen]),
                    masked_only(logits, inputs[chosen], labels[chosen]))

    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=args.lr, betas=(0.9, 0.98),
                                  eps=1e-6)
    schedule = TrainConfig(lr=args.lr, max_steps=args.steps)
    held_out = batches.valid_batches(5)
    curve = []
    start = time.perf_counter()
    for step in range(args.steps + 1):
        if step % 100 == 0:
            model.eval()
            with torch.no_grad():
                value = np.mean([float(losses(p.tensors["inputs"], p.tensors["labels"])[1])
                                 for p in held_out])
            model.train()
            curve.append((step, float(value), time.perf_counter() - start))
            print(f"{side} step {step}: {value:.3f}", flush=True)
        if step == args.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(schedule, step / args.steps)
        prepared, _ = batches.train_batch(step)
        loss, _ = losses(prepared.tensors["inputs"], prepared.tensors["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return curve


if __name__ == "__main__":
    main()
