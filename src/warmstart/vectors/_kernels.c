/* Word-vector training kernels: skip-gram and CBOW with negative sampling, optionally with
 * fastText-style subwords. Called from Python through ctypes (which releases the GIL), one
 * chunk of the token-id stream at a time, by several threads that update the shared matrices
 * without locks (Hogwild), as word2vec.c and gensim do.
 *
 * The arithmetic follows word2vec.c and gensim: frequency subsampling against sample_int, a
 * reduced window drawn per word, negatives from the unigram^0.75 distribution (here through an
 * alias table: one memory read per draw, where gensim bisects), sigmoid from a lookup table,
 * and no update when the dot product falls outside [-MAX_EXP, MAX_EXP]. The loss is the
 * negative-sampling loss summed over every prediction made.
 *
 * Subword models compose a word's input vector once as the mean of its own row and its n-gram
 * rows. Every one of those rows then receives the same gradient, so the composed vector moves by
 * exactly that gradient: updating it in place after each prediction reproduces fastText's
 * per-prediction updates while writing the n-gram rows once per centre word (skip-gram) or once
 * per token (CBOW, see cbow_sentence). The only difference: a word seen twice within one window,
 * or two words sharing an n-gram there, see each other's updates a few words later.
 *
 * It is a plain C file with a stub module init so that setuptools can build it as an extension
 * on every platform; Python never imports it, it loads it with ctypes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EXP 6.0f
#define EXP_TABLE_SIZE 1000

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One binary, the best vector unit of the machine it runs on (AVX-512, AVX2 or SSE2). */
#define HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef struct {
    float *syn0;            /* (n_words, dim) input vectors (word rows with subwords) */
    float *ngrams;          /* (bucket, dim) n-gram rows, or NULL */
    const int64_t *ng_off;  /* (n_words + 1) CSR offsets into ng_ids */
    const int32_t *ng_ids;  /* n-gram rows of each word */
    float *syn1neg;         /* (n_words, dim) output vectors */
    const uint64_t *sample_int;
    const int64_t *noise;   /* alias table: keep threshold << 32 | alias id */
    const float *exp_table;
    const float *log_table;
    int64_t n_noise;
    int64_t dim;
    int64_t window;
    int64_t negative;
    int64_t max_len;
    int64_t cbow;
    int64_t subwords;
} params_t;

typedef struct {
    double loss;
    int64_t n_pred;
    int64_t n_eff;
} result_t;

/* xorshift64*: the state is r, the top 32 bits of the result are the uniform draw. (word2vec's
 * 48-bit LCG, kept by gensim, has serial correlations that showed in the quality figures.) */
static inline uint64_t next_random(uint64_t r) {
    r ^= r >> 12;
    r ^= r << 25;
    r ^= r >> 27;
    return r;
}
static inline uint64_t draw32(uint64_t r) { return (r * 2685821657736338717ULL) >> 32; }

/* One step per draw: the 32-bit draw u picks the entry (u * n) >> 32, and the low half of that
 * product, uniform within the entry, is the coin. */
static inline int64_t draw_negative(const params_t *p, uint64_t *r) {
    *r = next_random(*r);
    uint64_t x = draw32(*r) * (uint64_t)p->n_noise;
    int64_t i = (int64_t)(x >> 32);
    uint64_t e = (uint64_t)p->noise[i];
    if ((x & 0xFFFFFFFFULL) < (e >> 32)) return i;
    return (int64_t)(e & 0xFFFFFFFFULL);
}

/* One prediction of `word` from hidden vector h: adds the input gradient to neu1e, updates the
 * output rows, returns the loss. */
static inline double predict(const params_t *p, const float *restrict h, int64_t word, float alpha,
                             float *restrict neu1e, uint64_t *r) {
    const int64_t dim = p->dim;
    double loss = 0.0;
    const float scale = EXP_TABLE_SIZE / MAX_EXP / 2.0f;
    for (int64_t d = 0; d <= p->negative; d++) {
        int64_t target;
        float label;
        if (d == 0) {
            target = word;
            label = 1.0f;
        } else {
            target = draw_negative(p, r);
            if (target == word) continue;
            label = 0.0f;
        }
        float *restrict out = p->syn1neg + target * dim;
        float f = 0.0f;
        for (int64_t k = 0; k < dim; k++) f += h[k] * out[k];
        /* Outside the table: no update (a NaN dot product too, which compares false). */
        if (!(f > -MAX_EXP && f < MAX_EXP)) continue;
        int idx = (int)((f + MAX_EXP) * scale);
        /* In float arithmetic the largest float below MAX_EXP lands on EXP_TABLE_SIZE: clamp
         * it to the last entry instead of reading past the table (a read of whatever memory
         * follows it: the likely cause of a vector that once ended with a norm of 1e16). */
        if (idx >= EXP_TABLE_SIZE) idx = EXP_TABLE_SIZE - 1;
        float g = (label - p->exp_table[idx]) * alpha;
        loss -= label > 0.5f ? p->log_table[idx] : p->log_table[EXP_TABLE_SIZE - 1 - idx];
        for (int64_t k = 0; k < dim; k++) neu1e[k] += g * out[k];
        for (int64_t k = 0; k < dim; k++) out[k] += g * h[k];
    }
    return loss;
}

/* out = mean of the word's own row and its n-gram rows (just its row without subwords). */
static inline void compose(const params_t *p, int64_t w, float *restrict out) {
    const int64_t dim = p->dim;
    memcpy(out, p->syn0 + w * dim, dim * sizeof(float));
    if (!p->subwords) return;
    int64_t a = p->ng_off[w], b = p->ng_off[w + 1];
    for (int64_t t = a; t < b; t++) {
        const float *restrict g = p->ngrams + (int64_t)p->ng_ids[t] * dim;
        for (int64_t k = 0; k < dim; k++) out[k] += g[k];
    }
    float inv = 1.0f / (float)(1 + b - a);
    for (int64_t k = 0; k < dim; k++) out[k] *= inv;
}

/* Add grad to the word's own row and to each of its n-gram rows. */
static inline void spread(const params_t *p, int64_t w, const float *restrict grad) {
    const int64_t dim = p->dim;
    float *restrict row = p->syn0 + w * dim;
    for (int64_t k = 0; k < dim; k++) row[k] += grad[k];
    if (!p->subwords) return;
    for (int64_t t = p->ng_off[w]; t < p->ng_off[w + 1]; t++) {
        float *restrict g = p->ngrams + (int64_t)p->ng_ids[t] * dim;
        for (int64_t k = 0; k < dim; k++) g[k] += grad[k];
    }
}

/* CBOW over one subsampled document: the mean of the context predicts the centre word.
 *
 * A position's input vector (composed from its n-grams when there are any) is computed once,
 * when it first enters a window, and kept in cache; each prediction adds its gradient to the
 * cached vectors of the context at once, as the per-prediction update would, and to grad,
 * which is written to the word's rows once the position has left every window. Rows are then
 * read and written once per token instead of once per (token, centre) pair. */
static inline double cbow_sentence(const params_t *p, const int32_t *buf, int64_t len, float alpha,
                                   float *restrict h, float *restrict neu1e, float *restrict cache,
                                   float *restrict grad, uint64_t *r, int64_t *n_pred) {
    const int64_t dim = p->dim;
    double loss = 0.0;
    int64_t composed = 0, applied = 0;
    for (int64_t i = 0; i < len; i++) {
        *r = next_random(*r);
        int64_t b = (int64_t)(draw32(*r) % (uint64_t)p->window);
        int64_t lo = i - p->window + b, hi = i + p->window + 1 - b;
        if (lo < 0) lo = 0;
        if (hi > len) hi = len;
        int64_t need = i + p->window + 1 < len ? i + p->window + 1 : len;
        for (; composed < need; composed++) {
            compose(p, buf[composed], cache + composed * dim);
            memset(grad + composed * dim, 0, dim * sizeof(float));
        }
        if (hi - lo > 1) {
            memset(h, 0, dim * sizeof(float));
            for (int64_t j = lo; j < hi; j++) {
                if (j == i) continue;
                const float *restrict c = cache + j * dim;
                for (int64_t k = 0; k < dim; k++) h[k] += c[k];
            }
            float inv = 1.0f / (float)(hi - lo - 1);
            for (int64_t k = 0; k < dim; k++) h[k] *= inv;
            memset(neu1e, 0, dim * sizeof(float));
            loss += predict(p, h, buf[i], alpha, neu1e, r);
            (*n_pred)++;
            for (int64_t j = lo; j < hi; j++) {
                if (j == i) continue;
                float *restrict c = cache + j * dim, *restrict g = grad + j * dim;
                for (int64_t k = 0; k < dim; k++) {
                    c[k] += neu1e[k];
                    g[k] += neu1e[k];
                }
            }
        }
        /* centres after i look no further back than i + 1 - window */
        for (; applied < i + 1 - p->window; applied++) spread(p, buf[applied], grad + applied * dim);
    }
    for (; applied < composed; applied++) spread(p, buf[applied], grad + applied * dim);
    return loss;
}

HOT EXPORT int ws_train_chunk(const params_t *p, const int32_t *ids, int64_t n, double alpha0,
                              double alpha1, uint64_t seed, result_t *res) {
    const int64_t dim = p->dim;
    int32_t *buf = malloc(p->max_len * sizeof(int32_t));
    float *h = malloc(dim * sizeof(float));
    float *neu1e = malloc(dim * sizeof(float));
    float *total = malloc(dim * sizeof(float));
    float *cache = p->cbow ? malloc(p->max_len * dim * sizeof(float)) : NULL;
    float *grad = p->cbow ? malloc(p->max_len * dim * sizeof(float)) : NULL;
    if (!buf || !h || !neu1e || !total || (p->cbow && (!cache || !grad))) {
        free(buf); free(h); free(neu1e); free(total); free(cache); free(grad);
        return -1;
    }
    uint64_t r = seed ? seed : 1;
    double loss = 0.0;
    int64_t n_pred = 0, n_eff = 0, pos = 0;
    while (pos < n) {
        /* one document (at most max_len tokens), subsampled into buf */
        int64_t end = pos;
        while (end < n && ids[end] >= 0 && end - pos < p->max_len) end++;
        int64_t len = 0;
        for (int64_t q = pos; q < end; q++) {
            int32_t w = ids[q];
            r = next_random(r);
            if (p->sample_int[w] < draw32(r)) continue;
            buf[len++] = w;
        }
        pos = (end < n && ids[end] < 0) ? end + 1 : end;
        float alpha = (float)(alpha0 + (alpha1 - alpha0) * ((double)pos / (double)n));
        n_eff += len;
        if (p->cbow) {
            loss += cbow_sentence(p, buf, len, alpha, h, neu1e, cache, grad, &r, &n_pred);
            continue;
        }
        for (int64_t i = 0; i < len; i++) {
            r = next_random(r);
            int64_t b = (int64_t)(draw32(r) % (uint64_t)p->window);
            int64_t lo = i - p->window + b, hi = i + p->window + 1 - b;
            if (lo < 0) lo = 0;
            if (hi > len) hi = len;
            if (p->subwords) {
                /* the centre word's subwords predict each context word (fastText) */
                if (hi - lo <= 1) continue;
                compose(p, buf[i], h);
                memset(total, 0, dim * sizeof(float));
                for (int64_t j = lo; j < hi; j++) {
                    if (j == i) continue;
                    memset(neu1e, 0, dim * sizeof(float));
                    loss += predict(p, h, buf[j], alpha, neu1e, &r);
                    n_pred++;
                    for (int64_t k = 0; k < dim; k++) {
                        h[k] += neu1e[k];
                        total[k] += neu1e[k];
                    }
                }
                spread(p, buf[i], total);
            } else {
                /* each context word predicts the centre word (word2vec.c, gensim) */
                for (int64_t j = lo; j < hi; j++) {
                    if (j == i) continue;
                    float *restrict src = p->syn0 + (int64_t)buf[j] * dim;
                    memset(neu1e, 0, dim * sizeof(float));
                    loss += predict(p, src, buf[i], alpha, neu1e, &r);
                    n_pred++;
                    for (int64_t k = 0; k < dim; k++) src[k] += neu1e[k];
                }
            }
        }
    }
    free(buf); free(h); free(neu1e); free(total); free(cache); free(grad);
    res->loss = loss;
    res->n_pred = n_pred;
    res->n_eff = n_eff;
    return 0;
}

/* The final vector of every vocabulary word into out (n_words, dim). */
EXPORT void ws_compose_all(const params_t *p, int64_t n_words, float *out) {
    for (int64_t w = 0; w < n_words; w++) compose(p, w, out + w * p->dim);
}

/* Alias table of the distribution weights[0..n) (Vose's method), packed for draw_negative. */
EXPORT int ws_build_noise_table(const double *weights, int64_t n, int64_t *out) {
    double *scaled = malloc(n * sizeof(double));
    int64_t *alias = malloc(n * sizeof(int64_t));
    int64_t *small = malloc(n * sizeof(int64_t));
    int64_t *large = malloc(n * sizeof(int64_t));
    if (!scaled || !alias || !small || !large) {
        free(scaled); free(alias); free(small); free(large);
        return -1;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += weights[i];
    int64_t ns = 0, nl = 0;
    for (int64_t i = 0; i < n; i++) {
        scaled[i] = weights[i] / sum * (double)n;
        alias[i] = i;
        if (scaled[i] < 1.0) small[ns++] = i;
        else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
        int64_t s = small[--ns], g = large[--nl];
        alias[s] = g;
        scaled[g] = scaled[g] + scaled[s] - 1.0;
        if (scaled[g] < 1.0) small[ns++] = g;
        else large[nl++] = g;
    }
    for (int64_t i = 0; i < n; i++) {
        double keep = alias[i] == i ? 1.0 : scaled[i]; /* left on a stack by rounding: itself */
        double t = keep * 4294967296.0;
        uint64_t th = t >= 4294967295.0 ? 4294967295ULL : (uint64_t)t;
        out[i] = (int64_t)((th << 32) | (uint64_t)alias[i]);
    }
    free(scaled); free(alias); free(small); free(large);
    return 0;
}

/* n draws from a noise table (tests and diagnostics). */
EXPORT void ws_sample_noise(const int64_t *noise, int64_t n_noise, int64_t n, uint64_t seed, int64_t *out) {
    params_t p;
    memset(&p, 0, sizeof p);
    p.noise = noise;
    p.n_noise = n_noise;
    uint64_t r = seed ? seed : 1;
    for (int64_t k = 0; k < n; k++) out[k] = draw_negative(&p, &r);
}

/* fastText's hash (FNV-1a over bytes, each sign-extended as fastText's int8_t cast does) of
 * the strings data[offsets[k]..offsets[k+1]). */
EXPORT void ws_fnv1a_many(const uint8_t *data, const int64_t *offsets, int64_t n, uint32_t *out) {
    for (int64_t k = 0; k < n; k++) {
        uint32_t h = 2166136261u;
        for (int64_t i = offsets[k]; i < offsets[k + 1]; i++) {
            h ^= (uint32_t)(int32_t)(int8_t)data[i];
            h *= 16777619u;
        }
        out[k] = h;
    }
}

/* word2vec text format: a "word v1 .. vdim\n" line per row into out; returns the bytes written.
 * "%.9g" gives every float32 back bit for bit; out must hold 17 bytes per value beyond the
 * words and newlines. */
EXPORT int64_t ws_format_rows(const uint8_t *words, const int64_t *offsets, const float *vectors,
                              int64_t n, int64_t dim, char *out) {
    char *p = out;
    for (int64_t i = 0; i < n; i++) {
        memcpy(p, words + offsets[i], offsets[i + 1] - offsets[i]);
        p += offsets[i + 1] - offsets[i];
        for (int64_t j = 0; j < dim; j++) p += snprintf(p, 18, " %.9g", (double)vectors[i * dim + j]);
        *p++ = '\n';
    }
    return p - out;
}

/* Parse up to max_rows text lines "word v1 .. vdim" of data[0..size) into out (max_rows, dim).
 * Per line i: spans[3i..3i+2] = word start, word end, end of the numbers; status[i] = 0 when
 * out[i] holds exactly dim numbers, 1 otherwise (the caller then reports the line). Numbers are
 * read as doubles and rounded to float32, as numpy does. Returns the number of lines seen. */
EXPORT int64_t ws_parse_lines(const char *data, int64_t size, int64_t dim, float *out,
                              int64_t max_rows, int64_t *spans, int8_t *status) {
    int64_t pos = 0, k = 0;
    char num[64];
    while (pos < size && k < max_rows) {
        int64_t end = pos;
        while (end < size && data[end] != '\n') end++;
        int64_t next = end + 1;
        while (end > pos && (data[end - 1] == ' ' || data[end - 1] == '\t' || data[end - 1] == '\r')) end--;
        int64_t we = pos;
        while (we < end && data[we] != ' ') we++;
        spans[3 * k] = pos;
        spans[3 * k + 1] = we;
        spans[3 * k + 2] = end;
        int64_t j = we, count = 0;
        int bad = 0;
        for (;;) {
            while (j < end && (data[j] == ' ' || data[j] == '\t')) j++;
            if (j >= end) break;
            int64_t t = j;
            while (t < end && data[t] != ' ' && data[t] != '\t') t++;
            if (count == dim || t - j >= (int64_t)sizeof num) { bad = 1; break; }
            memcpy(num, data + j, t - j); /* a terminated copy: strtod never reads past it */
            num[t - j] = 0;
            char *stop;
            double v = strtod(num, &stop);
            if (stop != num + (t - j)) { bad = 1; break; }
            out[k * dim + count++] = (float)v;
            j = t;
        }
        status[k] = (int8_t)(bad || count != dim);
        k++;
        pos = next;
    }
    return k;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels",
                                    "Word-vector kernels, loaded with ctypes.", -1, NULL};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
