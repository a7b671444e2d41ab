"""Compiled CPU kernels for word-vector training (numba, GIL released, Hogwild threads).

Each kernel trains on one chunk of the token-id stream (``-1`` ends a document) and returns
``(loss_sum, n_predictions, n_effective_words)``. The arithmetic follows word2vec.c and gensim:
frequency subsampling with ``sample_int``, a reduced window drawn per word, negatives drawn from
the unigram^0.75 table by bisection, sigmoid from a lookup table, and updates skipped when the
dot product falls outside ``[-MAX_EXP, MAX_EXP]``. The loss is the negative-sampling loss
``-log s(x.y) - sum log s(-x.n)`` summed over every prediction made, so it is comparable across
runs and epochs (gensim's ``running_training_loss`` is a cumulative sum that users misread).

Subword kernels compose a word's input vector once as the mean of its word row and n-gram
rows; since every row then receives the same gradient, the composed vector moves by exactly
that gradient, so updating it in place after each prediction reproduces fastText's per-pair
updates while touching the n-gram rows only once per centre word.
"""

from __future__ import annotations

import numba
import numpy as np

MAX_EXP = 6.0
EXP_TABLE_SIZE = 1000
_LCG_MUL = np.uint64(25214903917)
_LCG_ADD = np.uint64(11)
_LCG_MASK = np.uint64(281474976710655)  # 2**48 - 1, as word2vec.c / gensim


def make_tables() -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid and log-sigmoid over ``[-MAX_EXP, MAX_EXP]`` in ``EXP_TABLE_SIZE`` steps."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


_jit = numba.njit(nogil=True, fastmath=True, cache=True, boundscheck=False, error_model="numpy")


@_jit
def _next(r):  # pragma: no cover - jit
    return (r * _LCG_MUL + _LCG_ADD) & _LCG_MASK


@_jit
def _draw_negative(r, cum_table):  # pragma: no cover - jit
    target = np.int64((r >> np.uint64(16)) % np.uint64(cum_table[len(cum_table) - 1]))
    lo = 0
    hi = len(cum_table)
    while lo < hi:  # bisect_left
        mid = (lo + hi) >> 1
        if cum_table[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _subsample(ids, start, end, sample_int, buf, r):  # pragma: no cover - jit
    """Copy the kept words of ids[start:end] into buf; return (count, rng)."""
    n = 0
    for p in range(start, end):
        w = ids[p]
        r = _next(r)
        if sample_int[w] < (r >> np.uint64(16)) & np.uint64(0xFFFFFFFF):
            continue
        buf[n] = w
        n += 1
    return n, r


@_jit
def _predict(h, syn1neg, word, negative, cum_table, alpha, exp_table, log_table, neu1e, r):  # pragma: no cover - jit
    """One negative-sampling prediction of ``word`` from hidden vector ``h``.

    Adds the input gradient to ``neu1e``, updates the output rows, returns (loss, rng).
    """
    dim = h.shape[0]
    loss = 0.0
    scale = EXP_TABLE_SIZE / MAX_EXP / 2.0
    for d in range(negative + 1):
        if d == 0:
            target = word
            label = 1.0
        else:
            r = _next(r)
            target = _draw_negative(r, cum_table)
            if target == word:
                continue
            label = 0.0
        out = syn1neg[target]
        f = np.float32(0.0)
        for k in range(dim):
            f += h[k] * out[k]
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue
        idx = int((f + MAX_EXP) * scale)
        sig = exp_table[idx]
        g = np.float32((label - sig) * alpha)
        if label > 0.5:
            loss -= log_table[idx]
        else:
            loss -= log_table[EXP_TABLE_SIZE - 1 - idx]
        for k in range(dim):
            neu1e[k] += g * out[k]
            out[k] += g * h[k]
    return loss, r


@_jit
def _doc_end(ids, start, n, max_len):  # pragma: no cover - jit
    end = start
    while end < n and ids[end] >= 0 and end - start < max_len:
        end += 1
    return end


@_jit
def train_sg(
    syn0, syn1neg, ids, sample_int, cum_table, exp_table, log_table,
    window, negative, alpha0, alpha1, seed, max_len,
):  # pragma: no cover - jit
    """Skip-gram with negative sampling on one chunk: each context word predicts the centre."""
    dim = syn0.shape[1]
    neu1e = np.empty(dim, dtype=np.float32)
    buf = np.empty(max_len, dtype=np.int32)
    r = np.uint64(seed) & _LCG_MASK
    n = len(ids)
    loss = 0.0
    n_pred = 0
    n_eff = 0
    pos = 0
    while pos < n:
        end = _doc_end(ids, pos, n, max_len)
        length, r = _subsample(ids, pos, end, sample_int, buf, r)
        pos = end + 1 if end < n and ids[end] < 0 else end
        alpha = alpha0 + (alpha1 - alpha0) * (pos / n)
        n_eff += length
        for i in range(length):
            r = _next(r)
            b = np.int64((r >> np.uint64(16)) % np.uint64(window))
            lo = max(0, i - window + b)
            hi = min(length, i + window + 1 - b)
            for j in range(lo, hi):
                if j == i:
                    continue
                h = syn0[buf[j]]
                neu1e[:] = 0.0
                lo_, r = _predict(h, syn1neg, buf[i], negative, cum_table, alpha, exp_table, log_table, neu1e, r)
                loss += lo_
                n_pred += 1
                for k in range(dim):
                    h[k] += neu1e[k]
    return loss, n_pred, n_eff


@_jit
def train_cbow(
    syn0, syn1neg, ids, sample_int, cum_table, exp_table, log_table,
    window, negative, alpha0, alpha1, seed, max_len,
):  # pragma: no cover - jit
    """CBOW with negative sampling on one chunk: the mean of the context predicts the centre."""
    dim = syn0.shape[1]
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    buf = np.empty(max_len, dtype=np.int32)
    r = np.uint64(seed) & _LCG_MASK
    n = len(ids)
    loss = 0.0
    n_pred = 0
    n_eff = 0
    pos = 0
    while pos < n:
        end = _doc_end(ids, pos, n, max_len)
        length, r = _subsample(ids, pos, end, sample_int, buf, r)
        pos = end + 1 if end < n and ids[end] < 0 else end
        alpha = alpha0 + (alpha1 - alpha0) * (pos / n)
        n_eff += length
        for i in range(length):
            r = _next(r)
            b = np.int64((r >> np.uint64(16)) % np.uint64(window))
            lo = max(0, i - window + b)
            hi = min(length, i + window + 1 - b)
            neu1[:] = 0.0
            count = 0
            for j in range(lo, hi):
                if j != i:
                    row = syn0[buf[j]]
                    for k in range(dim):
                        neu1[k] += row[k]
                    count += 1
            if count == 0:
                continue
            inv = np.float32(1.0 / count)
            for k in range(dim):
                neu1[k] *= inv
            neu1e[:] = 0.0
            lo_, r = _predict(neu1, syn1neg, buf[i], negative, cum_table, alpha, exp_table, log_table, neu1e, r)
            loss += lo_
            n_pred += 1
            for j in range(lo, hi):
                if j != i:
                    row = syn0[buf[j]]
                    for k in range(dim):
                        row[k] += neu1e[k]
    return loss, n_pred, n_eff


@_jit
def _compose(word, syn0_vocab, syn0_ngrams, ng_off, ng_ids, out):  # pragma: no cover - jit
    """out = mean of the word's own row and its n-gram rows."""
    dim = out.shape[0]
    row = syn0_vocab[word]
    for k in range(dim):
        out[k] = row[k]
    for t in range(ng_off[word], ng_off[word + 1]):
        g = syn0_ngrams[ng_ids[t]]
        for k in range(dim):
            out[k] += g[k]
    inv = np.float32(1.0 / (1 + ng_off[word + 1] - ng_off[word]))
    for k in range(dim):
        out[k] *= inv


@_jit
def _spread(word, syn0_vocab, syn0_ngrams, ng_off, ng_ids, grad):  # pragma: no cover - jit
    """Add grad to the word's own row and to each of its n-gram rows."""
    dim = grad.shape[0]
    row = syn0_vocab[word]
    for k in range(dim):
        row[k] += grad[k]
    for t in range(ng_off[word], ng_off[word + 1]):
        g = syn0_ngrams[ng_ids[t]]
        for k in range(dim):
            g[k] += grad[k]


@_jit
def train_sg_subword(
    syn0_vocab, syn0_ngrams, ng_off, ng_ids, syn1neg, ids, sample_int, cum_table, exp_table,
    log_table, window, negative, alpha0, alpha1, seed, max_len,
):  # pragma: no cover - jit
    """fastText skip-gram on one chunk: the centre word's subwords predict each context word."""
    dim = syn0_vocab.shape[1]
    h = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    total = np.empty(dim, dtype=np.float32)
    buf = np.empty(max_len, dtype=np.int32)
    r = np.uint64(seed) & _LCG_MASK
    n = len(ids)
    loss = 0.0
    n_pred = 0
    n_eff = 0
    pos = 0
    while pos < n:
        end = _doc_end(ids, pos, n, max_len)
        length, r = _subsample(ids, pos, end, sample_int, buf, r)
        pos = end + 1 if end < n and ids[end] < 0 else end
        alpha = alpha0 + (alpha1 - alpha0) * (pos / n)
        n_eff += length
        for i in range(length):
            r = _next(r)
            b = np.int64((r >> np.uint64(16)) % np.uint64(window))
            lo = max(0, i - window + b)
            hi = min(length, i + window + 1 - b)
            if hi - lo <= 1:
                continue
            _compose(buf[i], syn0_vocab, syn0_ngrams, ng_off, ng_ids, h)
            total[:] = 0.0
            for j in range(lo, hi):
                if j == i:
                    continue
                neu1e[:] = 0.0
                lo_, r = _predict(h, syn1neg, buf[j], negative, cum_table, alpha, exp_table, log_table, neu1e, r)
                loss += lo_
                n_pred += 1
                for k in range(dim):
                    h[k] += neu1e[k]
                    total[k] += neu1e[k]
            _spread(buf[i], syn0_vocab, syn0_ngrams, ng_off, ng_ids, total)
    return loss, n_pred, n_eff


@_jit
def train_cbow_subword(
    syn0_vocab, syn0_ngrams, ng_off, ng_ids, syn1neg, ids, sample_int, cum_table, exp_table,
    log_table, window, negative, alpha0, alpha1, seed, max_len,
):  # pragma: no cover - jit
    """fastText CBOW on one chunk: the mean of the context words' composed vectors predicts the centre."""
    dim = syn0_vocab.shape[1]
    neu1 = np.empty(dim, dtype=np.float32)
    tmp = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    buf = np.empty(max_len, dtype=np.int32)
    r = np.uint64(seed) & _LCG_MASK
    n = len(ids)
    loss = 0.0
    n_pred = 0
    n_eff = 0
    pos = 0
    while pos < n:
        end = _doc_end(ids, pos, n, max_len)
        length, r = _subsample(ids, pos, end, sample_int, buf, r)
        pos = end + 1 if end < n and ids[end] < 0 else end
        alpha = alpha0 + (alpha1 - alpha0) * (pos / n)
        n_eff += length
        for i in range(length):
            r = _next(r)
            b = np.int64((r >> np.uint64(16)) % np.uint64(window))
            lo = max(0, i - window + b)
            hi = min(length, i + window + 1 - b)
            neu1[:] = 0.0
            count = 0
            for j in range(lo, hi):
                if j != i:
                    _compose(buf[j], syn0_vocab, syn0_ngrams, ng_off, ng_ids, tmp)
                    for k in range(dim):
                        neu1[k] += tmp[k]
                    count += 1
            if count == 0:
                continue
            inv = np.float32(1.0 / count)
            for k in range(dim):
                neu1[k] *= inv
            neu1e[:] = 0.0
            lo_, r = _predict(neu1, syn1neg, buf[i], negative, cum_table, alpha, exp_table, log_table, neu1e, r)
            loss += lo_
            n_pred += 1
            for j in range(lo, hi):
                if j != i:
                    _spread(buf[j], syn0_vocab, syn0_ngrams, ng_off, ng_ids, neu1e)
    return loss, n_pred, n_eff


@numba.njit(cache=True, nogil=True)
def compose_all(syn0_vocab, syn0_ngrams, ng_off, ng_ids):  # pragma: no cover - jit
    """The final vector of every vocabulary word: mean of its row and its n-gram rows."""
    out = np.empty_like(syn0_vocab)
    for w in range(syn0_vocab.shape[0]):
        _compose(w, syn0_vocab, syn0_ngrams, ng_off, ng_ids, out[w])
    return out
