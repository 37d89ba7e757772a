/*
 * json_scan.c — one validating pass over an inference request that finds
 * the `data` arrays of its inputs, so that jansson never builds one value
 * per number.
 *
 * The scanner checks JSON syntax everywhere (strings, numbers, literals,
 * nesting bounded by max_depth) except inside inputs[i].data, where it only
 * matches brackets and skips strings: the typed data parser (codec_json.c)
 * validates those tokens as it converts them.  Each data array found is
 * recorded as a span; svc_json_load then hands jansson the document with
 * every span's interior left out, so jansson sees "data": [].
 *
 * Only the literal key spellings "inputs" and "data" are recognised; a key
 * written with escapes reaches jansson intact and is decoded there (slowly,
 * but correctly).
 */
#include "json_scan.h"

#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum role { R_OTHER, R_ROOT, R_INPUTS, R_INPUT, R_DATA };

typedef struct frame {
    char kind;        /* '{' or '[' */
    unsigned char role;
    unsigned char seen_data;
    size_t count;     /* elements so far (arrays) */
    size_t index;     /* R_INPUT: position in inputs */
} frame;

typedef struct scanner {
    const char *s;
    size_t len, i;
    svc_err *e;
    svc_span *spans;
    size_t n, cap;
} scanner;

static int fail(scanner *sc, const char *what) {
    return svc_fail(sc->e, 400, "malformed JSON at byte %zu: %s", sc->i, what);
}

static void skip_ws(scanner *sc) {
    while (sc->i < sc->len) {
        char c = sc->s[sc->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return;
        sc->i++;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* At the opening quote; leaves i after the closing quote. */
static int skip_string(scanner *sc) {
    sc->i++;
    while (sc->i < sc->len) {
        unsigned char c = (unsigned char)sc->s[sc->i];
        if (c == '"') {
            sc->i++;
            return 0;
        }
        if (c < 0x20) return fail(sc, "control character in string");
        if (c == '\\') {
            if (sc->i + 1 >= sc->len) break;
            char e = sc->s[sc->i + 1];
            if (e == 'u') {
                if (sc->i + 6 > sc->len) break;
                for (int k = 2; k < 6; k++)
                    if (hexval(sc->s[sc->i + k]) < 0) return fail(sc, "bad \\u escape");
                sc->i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == '\0') return fail(sc, "bad escape");
            sc->i += 2;
            continue;
        }
        sc->i++;
    }
    return fail(sc, "unterminated string");
}

static int literal(scanner *sc, const char *word) {
    size_t n = strlen(word);
    if (sc->len - sc->i < n || memcmp(sc->s + sc->i, word, n) != 0)
        return fail(sc, "unexpected character");
    sc->i += n;
    return 0;
}

/* At '[' of a data array: match brackets, skip strings, record the span. */
static int skip_data(scanner *sc, size_t input, int max_depth) {
    size_t start = sc->i;
    int depth = 0;
    while (sc->i < sc->len) {
        char c = sc->s[sc->i];
        if (c == '[') {
            if (++depth > max_depth) return fail(sc, "data nested deeper than the maximum rank");
        } else if (c == ']') {
            if (--depth == 0) {
                sc->i++;
                if (sc->n == sc->cap) {
                    size_t cap = sc->cap ? sc->cap * 2 : 8;
                    svc_span *p = realloc(sc->spans, cap * sizeof *p);
                    if (!p) return svc_fail(sc->e, 503, "out of memory");
                    sc->spans = p;
                    sc->cap = cap;
                }
                sc->spans[sc->n++] = (svc_span){input, start, sc->i};
                return 0;
            }
        } else if (c == '"') {
            if (skip_string(sc) != 0) return sc->e->status;
            continue;
        } else if (c == '{' || c == '}') {
            return fail(sc, "objects are not allowed in tensor data");
        }
        sc->i++;
    }
    return fail(sc, "unterminated data array");
}

static int key_is(const scanner *sc, size_t a, size_t b, const char *word) {
    size_t n = strlen(word);
    return b - a == n && memcmp(sc->s + a, word, n) == 0;
}

int svc_json_scan(const char *s, size_t len, int max_depth, int max_data_depth, svc_span **spans,
                  size_t *n_spans, svc_err *e) {
    scanner sc = {.s = s, .len = len, .e = e};
    frame *st = calloc((size_t)max_depth + 1, sizeof *st);
    int top = -1;
    enum { VALUE, VALUE_OR_CLOSE, AFTER, KEY, KEY_OR_CLOSE } state = VALUE;
    int role = R_ROOT;
    if (!st) return svc_fail(e, 503, "out of memory");
    for (;;) {
        skip_ws(&sc);
        if (sc.i >= len) {
            if (top < 0 && state == AFTER) break;
            fail(&sc, "unexpected end of document");
            goto bad;
        }
        char c = s[sc.i];
        switch (state) {
        case VALUE_OR_CLOSE:
            if (c == ']') {
                sc.i++;
                top--;
                state = AFTER;
                break;
            }
            /* fall through */
        case VALUE:
            if (top >= 0 && st[top].kind == '[') st[top].count++;
            if (c == '[' && role == R_DATA) {
                if (skip_data(&sc, st[top].index, max_data_depth) != 0) goto bad;
                state = AFTER;
            } else if (c == '{' || c == '[') {
                if (top + 1 >= max_depth) {
                    fail(&sc, "nested too deeply");
                    goto bad;
                }
                if (top < 0 && c != '{') {
                    fail(&sc, "the document must be an object");
                    goto bad;
                }
                frame *f = &st[++top];
                *f = (frame){.kind = c, .role = (unsigned char)(c == '{' ? (role == R_INPUT ? R_INPUT
                                                                            : role == R_ROOT ? R_ROOT
                                                                                             : R_OTHER)
                                                                    : (role == R_INPUTS ? R_INPUTS : R_OTHER))};
                if (f->role == R_INPUT) f->index = st[top - 1].count - 1;
                sc.i++;
                state = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
                role = f->role == R_INPUTS ? R_INPUT : R_OTHER;
                continue; /* role for the first element is set */
            } else if (c == '"') {
                if (skip_string(&sc) != 0) goto bad;
                state = AFTER;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                const char *q = svc_num_skip(s + sc.i, s + len);
                if (!q) {
                    fail(&sc, "bad number");
                    goto bad;
                }
                sc.i = (size_t)(q - s);
                state = AFTER;
            } else if (c == 't' || c == 'f' || c == 'n') {
                if (literal(&sc, c == 't' ? "true" : c == 'f' ? "false" : "null") != 0) goto bad;
                state = AFTER;
            } else {
                fail(&sc, "unexpected character");
                goto bad;
            }
            break;
        case AFTER:
            if (top < 0) {
                fail(&sc, "trailing characters after the document");
                goto bad;
            }
            if (c == ',') {
                sc.i++;
                if (st[top].kind == '{') {
                    state = KEY;
                } else {
                    state = VALUE;
                    role = st[top].role == R_INPUTS ? R_INPUT : R_OTHER;
                }
            } else if (c == (st[top].kind == '{' ? '}' : ']')) {
                sc.i++;
                top--;
            } else {
                fail(&sc, st[top].kind == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
                goto bad;
            }
            break;
        case KEY_OR_CLOSE:
            if (c == '}') {
                sc.i++;
                top--;
                state = AFTER;
                break;
            }
            /* fall through */
        case KEY: {
            if (c != '"') {
                fail(&sc, "expected a key");
                goto bad;
            }
            size_t a = sc.i + 1;
            if (skip_string(&sc) != 0) goto bad;
            size_t b = sc.i - 1;
            skip_ws(&sc);
            if (sc.i >= len || s[sc.i] != ':') {
                fail(&sc, "expected ':'");
                goto bad;
            }
            sc.i++;
            role = R_OTHER;
            if (st[top].role == R_ROOT && key_is(&sc, a, b, "inputs")) role = R_INPUTS;
            if (st[top].role == R_INPUT && key_is(&sc, a, b, "data")) {
                if (st[top].seen_data++) {
                    fail(&sc, "duplicate key \"data\"");
                    goto bad;
                }
                role = R_DATA;
            }
            state = VALUE;
            break;
        }
        }
    }
    free(st);
    *spans = sc.spans;
    *n_spans = sc.n;
    return 0;
bad:
    free(st);
    free(sc.spans);
    *spans = NULL;
    *n_spans = 0;
    return e->status;
}

/* ---- jansson over the document with the spans' interiors left out ---- */

typedef struct feed {
    const char *s;
    size_t len, pos;
    const svc_span *spans;
    size_t n, next;
} feed;

static size_t feed_cb(void *buffer, size_t buflen, void *data) {
    feed *f = data;
    size_t stop = f->len;
    if (f->next < f->n) {
        const svc_span *sp = &f->spans[f->next];
        if (f->pos >= sp->start + 1) { /* at the interior: jump to the ']' */
            f->pos = sp->end - 1;
            f->next++;
            stop = f->next < f->n ? f->spans[f->next].start + 1 : f->len;
        } else {
            stop = sp->start + 1; /* up to and including the '[' */
        }
    }
    size_t n = stop - f->pos;
    if (n > buflen) n = buflen;
    memcpy(buffer, f->s + f->pos, n);
    f->pos += n;
    return n;
}

int svc_json_load(const char *s, size_t len, const svc_span *spans, size_t n, json_t **out,
                  svc_err *e) {
    feed f = {.s = s, .len = len, .spans = spans, .n = n};
    json_error_t je;
    *out = json_load_callback(feed_cb, &f, JSON_REJECT_DUPLICATES, &je);
    return *out ? 0 : svc_fail(e, 400, "malformed JSON: %s", je.text);
}

int svc_json_parse(const char *s, size_t len, json_t **out, svc_err *e) {
    svc_span *spans = NULL;
    size_t n = 0;
    *out = NULL;
    if (svc_json_scan(s, len, svc_cfg.max_json_depth, 1, &spans, &n, e) != 0) return e->status;
    /* No inputs[].data here: if any, they are parsed by jansson like the rest. */
    free(spans);
    json_error_t je;
    *out = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    return *out ? 0 : svc_fail(e, 400, "malformed JSON: %s", je.text);
}
