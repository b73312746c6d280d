/* The consumer's fast path for access-log records: Kafka value + headers -> one `_bulk` index item.
 *
 * Semantics: parsers/access_encoder.py (plan format, action and slot codes) and the Python path it
 * stands for (logpipe/envelope.py, parsers/document.py, parsers/fieldmap.py, parsers/extra.py,
 * consumer/bulk.py). Anything outside the plain case returns None and the caller runs the Python
 * path, which is the reference; so every rule below declines rather than guesses.
 *
 * Per call: one pass over the line (validating UTF-8 and JSON, recording each value, writing the
 * escaped `message` into the output as it goes), a cached plan per key layout, then the document
 * written into a buffer reused across calls. No Python objects but the results (and a bytes key
 * when the layout is not the last one seen).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Actions and slots: parsers/access_encoder.py. */
enum { A_KEYWORD = 1, A_LONG, A_STATUS, A_IP, A_LEVEL, A_TRACE, A_TIME, A_DURATION, A_PATH, A_KEEP, A_FROM_HEADER };
enum {
    S_METHOD, S_URL_PATH, S_URL_QUERY, S_STATUS, S_BYTES, S_DURATION, S_CLIENT_IP, S_USER_AGENT, S_TRACE_ID,
    S_SPAN_ID, S_LEVEL, S_SERVICE, S_NAMESPACE, S_POD, S_URL_DOMAIN, NSLOTS
};
enum { V_NULL, V_TRUE, V_FALSE, V_INT, V_FLOAT, V_STR };
enum { OUT_OK, OUT_KEEP, OUT_INVALID, OUT_TIME, OUT_DECLINE };
/* Headers we read (logpipe/core/envelope.py); H_META is envelope version 2's packed lp.meta. */
enum { H_NODE, H_NAMESPACE, H_POD, H_POD_UID, H_CONTAINER, H_COMPONENT, H_TYPE, H_PATH, H_OFFSET, H_FILE_ID,
       H_READ_TS, H_FLAGS, H_FORMAT, NHEADERS, H_META };

#define MAX_KEYS 64
#define MAX_LAYOUTS 512
#define MAX_KEYWORD_CHARS 8191
#define MAX_SHIPPED_FLAGS 48
#define MAX_FLAGS (MAX_SHIPPED_FLAGS + MAX_KEYS + 4)
#define TWO53 9007199254740992LL
#define CAPSULE_NAME "parsers._access_encoder.plan"

/* ---------------------------------------------------------------- BLAKE2b (RFC 7693), 16-byte digest */

typedef struct {
    uint64_t h[8];
    uint64_t t;
    uint8_t b[128];
    size_t c;
} B2;

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t x, unsigned n) { return (x >> n) | (x << (64 - n)); }

static inline uint64_t load64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

#define B2_G(a, b, c, d, x, y)          \
    do {                                \
        v[a] = v[a] + v[b] + (x);       \
        v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);       \
        v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)

static void b2_compress(B2 *s, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = B2_IV[i];
    }
    v[12] ^= s->t; /* the high word of the counter stays 0: inputs are far below 2**64 bytes */
    if (last)
        v[14] = ~v[14];
    for (int i = 0; i < 16; i++)
        m[i] = load64(s->b + 8 * i);
    for (int r = 0; r < 12; r++) {
        const uint8_t *sg = B2_SIGMA[r];
        B2_G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);
        B2_G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);
        B2_G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);
        B2_G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);
        B2_G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);
        B2_G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);
        B2_G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);
        B2_G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);
    }
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
}

static void b2_init16(B2 *s) {
    memcpy(s->h, B2_IV, sizeof s->h);
    s->h[0] ^= 0x01010000ULL ^ 16; /* depth 1, fanout 1, no key, digest length 16 */
    s->t = 0;
    s->c = 0;
}

static void b2_update(B2 *s, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        if (s->c == 128) { /* a full block is compressed only once more input follows */
            s->t += 128;
            b2_compress(s, 0);
            s->c = 0;
        }
        size_t k = 128 - s->c;
        if (k > n)
            k = n;
        memcpy(s->b + s->c, p, k);
        s->c += k;
        p += k;
        n -= k;
    }
}

static void b2_final16(B2 *s, uint8_t out[16]) {
    s->t += s->c;
    memset(s->b + s->c, 0, 128 - s->c);
    b2_compress(s, 1);
    for (int i = 0; i < 16; i++)
        out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
}

/* ---------------------------------------------------------------- small helpers */

static const char HEX[] = "0123456789abcdef";

/* 1: the byte must be escaped in a JSON string ('"', '\\', control characters). */
static uint8_t NEEDS_ESC[256];

static void init_tables(void) {
    for (int i = 0; i < 0x20; i++)
        NEEDS_ESC[i] = 1;
    NEEDS_ESC['"'] = 1;
    NEEDS_ESC['\\'] = 1;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. Reads stop at the first
 * byte that is not a continuation, so a NUL sentinel at the end of the buffer bounds them. */
static inline int utf8_seq(const unsigned char *p) {
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
        if (p[1] < lo || p[1] > hi)
            return 0;
        return (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
        if (p[1] < lo || p[1] > hi)
            return 0;
        if ((p[2] & 0xC0) != 0x80)
            return 0;
        return (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* Strict UTF-8 check of a buffer that may not end with a sentinel. */
static int utf8_valid(const unsigned char *p, Py_ssize_t n) {
    const unsigned char *e = p + n;
    while (p < e) {
        if (e - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            if (!(v & 0x8080808080808080ULL)) {
                p += 8;
                continue;
            }
        }
        if (*p < 0x80) {
            p++;
            continue;
        }
        unsigned char tmp[4] = {0, 0, 0, 0};
        Py_ssize_t k = e - p < 4 ? e - p : 4;
        memcpy(tmp, p, (size_t)k);
        int len = utf8_seq(tmp);
        if (len == 0 || len > k)
            return 0;
        p += len;
    }
    return 1;
}

/* Code points of valid UTF-8. */
static Py_ssize_t cp_len(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t cont = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        cont += (p[i] & 0xC0) == 0x80;
    return n - cont;
}

/* Python's str.isspace() for ASCII (str.strip() with no argument strips these). */
static inline int py_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F); }

static inline char *put_esc(char *w, unsigned char c) {
    *w++ = '\\';
    switch (c) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case '\b': *w++ = 'b'; break;
    case '\t': *w++ = 't'; break;
    case '\n': *w++ = 'n'; break;
    case '\f': *w++ = 'f'; break;
    case '\r': *w++ = 'r'; break;
    default:
        *w++ = 'u';
        *w++ = '0';
        *w++ = '0';
        *w++ = HEX[c >> 4];
        *w++ = HEX[c & 15];
    }
    return w;
}

/* A JSON string (quotes included); the caller reserved 2 + 6n bytes. */
static char *put_str(char *w, const unsigned char *p, Py_ssize_t n) {
    const unsigned char *run = p, *e = p + n;
    *w++ = '"';
    for (; p < e; p++) {
        if (NEEDS_ESC[*p]) {
            memcpy(w, run, (size_t)(p - run));
            w += p - run;
            w = put_esc(w, *p);
            run = p + 1;
        }
    }
    memcpy(w, run, (size_t)(e - run));
    w += e - run;
    *w++ = '"';
    return w;
}

/* A string known to need no escaping. */
static inline char *put_plain(char *w, const void *p, Py_ssize_t n) {
    *w++ = '"';
    memcpy(w, p, (size_t)n);
    w += n;
    *w++ = '"';
    return w;
}

#define PUT_LIT(w, s)                       \
    do {                                    \
        memcpy((w), (s), sizeof(s) - 1);    \
        (w) += sizeof(s) - 1;               \
    } while (0)

static char *put_int(char *w, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u;
    if (v < 0) {
        *w++ = '-';
        u = (uint64_t)0 - (uint64_t)v;
    } else {
        u = (uint64_t)v;
    }
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        *w++ = tmp[--n];
    return w;
}

static inline void put2(char *w, unsigned v) {
    w[0] = (char)('0' + v / 10);
    w[1] = (char)('0' + v % 10);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* "YYYY.MM.DD" of a day number (years 1..9999 only reach here). */
static void put_day(char *w, int64_t days) {
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    put2(w, (unsigned)(y / 100));
    put2(w + 2, (unsigned)(y % 100));
    w[4] = '.';
    put2(w + 5, m);
    w[7] = '.';
    put2(w + 8, d);
}

static inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline int hexval(unsigned c) {
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* ---------------------------------------------------------------- growable buffer */

typedef struct {
    char *p;
    Py_ssize_t cap;
} Buf;

/* At least n bytes; -1 with MemoryError. Contents are not kept (every call starts over). */
static int buf_reserve(Buf *b, Py_ssize_t n) {
    if (n <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < n) {
        if (cap > PY_SSIZE_T_MAX / 2)
            return PyErr_NoMemory(), -1;
        cap *= 2;
    }
    char *p = PyMem_Malloc((size_t)cap);
    if (p == NULL)
        return PyErr_NoMemory(), -1;
    PyMem_Free(b->p);
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Grows keeping the contents. */
static int buf_grow(Buf *b, Py_ssize_t n) {
    if (n <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < n) {
        if (cap > PY_SSIZE_T_MAX / 2)
            return PyErr_NoMemory(), -1;
        cap *= 2;
    }
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL)
        return PyErr_NoMemory(), -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* A huge line must not pin its buffers for the life of the consumer. */
static void buf_trim(Buf *b) {
    if (b->cap > (4 << 20)) {
        PyMem_Free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
}

/* ---------------------------------------------------------------- the compiled plan */

typedef struct {
    int32_t pos, action, slot;
    int64_t arg;
    const char *flag;
    Py_ssize_t flag_n;
} Step;

typedef struct {
    int nkeys, nsteps, nextra;
    Py_ssize_t flags_total, names_total;
    Step steps[MAX_KEYS];
    int8_t extra_pos[MAX_KEYS];
    const char *name[MAX_KEYS];
    Py_ssize_t name_n[MAX_KEYS];
    char data[]; /* flag and name bytes */
} Plan;

/* The inside of a JSON string as orjson writes it: valid UTF-8, no raw quote or control character,
 * every backslash starting an escape. */
static int json_string_body(const unsigned char *p, Py_ssize_t n) {
    if (!utf8_valid(p, n))
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == '"')
            return 0;
        if (p[i] == '\\') {
            if (i + 1 >= n)
                return 0;
            i++;
            if (p[i] == 'u') {
                if (i + 4 >= n || hexval(p[i + 1]) < 0 || hexval(p[i + 2]) < 0 || hexval(p[i + 3]) < 0 ||
                    hexval(p[i + 4]) < 0)
                    return 0;
                i += 4;
            } else if (!strchr("\"\\/bfnrt", p[i]) || p[i] == 0) {
                return 0;
            }
        }
    }
    return 1;
}

static void plan_capsule_free(PyObject *cap) { PyMem_RawFree(PyCapsule_GetPointer(cap, CAPSULE_NAME)); }

static int as_int64(PyObject *o, int64_t *out) {
    if (!PyLong_Check(o))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return 1;
}

/* The plan as returned by AccessEncoder.plan -> a C struct. 1 ok, 0 not a valid plan (the layout is
 * then declined), -1 MemoryError. Checks everything the encoder relies on: each key position used
 * once, a slot set by one step, FROM_HEADER only for its own slot, ... */
static int compile_plan(PyObject *obj, int nkeys, Plan **out) {
    *out = NULL;
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3)
        return 0;
    PyObject *steps = PyTuple_GET_ITEM(obj, 0), *extra = PyTuple_GET_ITEM(obj, 1), *names = PyTuple_GET_ITEM(obj, 2);
    if (!PyTuple_Check(steps) || !PyTuple_Check(extra) || !PyTuple_Check(names) || PyTuple_GET_SIZE(names) != nkeys ||
        PyTuple_GET_SIZE(steps) + PyTuple_GET_SIZE(extra) > nkeys)
        return 0;
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        PyObject *nm = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(nm) || PyBytes_GET_SIZE(nm) < 2 || PyBytes_GET_SIZE(nm) > 4096)
            return 0;
        total += PyBytes_GET_SIZE(nm);
    }
    const char *flag_p[MAX_KEYS];
    Py_ssize_t flag_n[MAX_KEYS];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(steps); i++) {
        PyObject *st = PyTuple_GET_ITEM(steps, i);
        if (!PyTuple_Check(st) || PyTuple_GET_SIZE(st) != 5 || !PyUnicode_Check(PyTuple_GET_ITEM(st, 4)))
            return 0;
        flag_p[i] = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(st, 4), &flag_n[i]);
        if (flag_p[i] == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError))
                return -1;
            PyErr_Clear();
            return 0;
        }
        if (flag_n[i] == 0 || flag_n[i] > 1024)
            return 0;
        total += flag_n[i];
    }
    Plan *pl = PyMem_RawMalloc(sizeof(Plan) + (size_t)total);
    if (pl == NULL)
        return PyErr_NoMemory(), -1;
    memset(pl, 0, sizeof(Plan));
    pl->nkeys = nkeys;
    char *d = pl->data;
    uint8_t used_pos[MAX_KEYS] = {0};
    uint8_t used_slot[NSLOTS] = {0};
    int times = 0, query_by_path = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(steps); i++) {
        PyObject *st = PyTuple_GET_ITEM(steps, i);
        int64_t pos, action, slot, arg;
        if (!as_int64(PyTuple_GET_ITEM(st, 0), &pos) || !as_int64(PyTuple_GET_ITEM(st, 1), &action) ||
            !as_int64(PyTuple_GET_ITEM(st, 2), &slot) || !as_int64(PyTuple_GET_ITEM(st, 3), &arg))
            goto invalid;
        if (pos < 0 || pos >= nkeys || used_pos[pos] || action < A_KEYWORD || action > A_FROM_HEADER)
            goto invalid;
        used_pos[pos] = 1;
        if (action == A_TIME || action == A_KEEP) {
            slot = -1;
            if (action == A_TIME && times++)
                goto invalid;
        } else {
            if (slot < 0 || slot >= NSLOTS || used_slot[slot])
                goto invalid;
            used_slot[slot] = 1;
            /* the header fields are written with the headers' own: only FROM_HEADER may set them */
            int header_slot = slot == S_SERVICE || slot == S_NAMESPACE || slot == S_POD;
            if ((action == A_FROM_HEADER) != header_slot)
                goto invalid;
            if (action == A_FROM_HEADER && arg != slot - S_SERVICE)
                goto invalid;
        }
        if (action == A_DURATION && (arg < 1 || arg > 1000000000000LL))
            goto invalid;
        if (action == A_PATH) {
            if (slot == S_URL_QUERY || (arg != 0 && arg != 1))
                goto invalid;
            query_by_path = (int)arg;
        }
        Step *s = &pl->steps[pl->nsteps++];
        s->pos = (int32_t)pos;
        s->action = (int32_t)action;
        s->slot = (int32_t)slot;
        s->arg = arg;
        memcpy(d, flag_p[i], (size_t)flag_n[i]);
        s->flag = d;
        s->flag_n = flag_n[i];
        d += flag_n[i];
        pl->flags_total += flag_n[i];
    }
    if (query_by_path && used_slot[S_URL_QUERY])
        goto invalid;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(extra); i++) {
        int64_t pos;
        if (!as_int64(PyTuple_GET_ITEM(extra, i), &pos) || pos < 0 || pos >= nkeys || used_pos[pos])
            goto invalid;
        used_pos[pos] = 1;
        pl->extra_pos[pl->nextra++] = (int8_t)pos;
    }
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        PyObject *nm = PyTuple_GET_ITEM(names, i);
        Py_ssize_t n = PyBytes_GET_SIZE(nm);
        const char *s = PyBytes_AS_STRING(nm);
        if (s[0] != '"' || s[n - 1] != '"' || !json_string_body((const unsigned char *)s + 1, n - 2))
            goto invalid;
        memcpy(d, s, (size_t)n);
        pl->name[i] = d;
        pl->name_n[i] = n;
        d += n;
        pl->names_total += n;
        for (Py_ssize_t j = 0; j < i; j++) /* two keys of one name would be one key of extra */
            if (pl->name_n[j] == n && memcmp(pl->name[j], pl->name[i], (size_t)n) == 0)
                goto invalid;
    }
    *out = pl;
    return 1;
invalid:
    PyMem_RawFree(pl);
    return 0;
}

/* ---------------------------------------------------------------- the encoder object */

typedef struct {
    PyObject_HEAD
    PyObject *plan_fn;
    PyObject *cache;     /* layout bytes -> capsule(Plan) or None */
    PyObject *last_obj;  /* the last layout's cache value (owned) */
    Plan *last_plan;     /* its plan, NULL = declined layout */
    char *last_key;      /* the last layout's bytes */
    Py_ssize_t last_key_n, last_key_cap;
    int have_last, busy;
    /* the action line: {"index":{"_index":"<prefix>-access-YYYY.MM.DD","_id":"<32 hex>"}}\n */
    char *head;
    Py_ssize_t head_n, day_off, id_off;
    char *prefix; /* UTF-8, for the index name */
    Py_ssize_t prefix_n;
    int has_future, has_past;
    double max_future, max_past;
    Py_ssize_t max_keys, max_value_chars;
    Buf out, scratch, layout;
    PyObject *last_index; /* the last index name (str) and its day */
    char last_index_day[10];
    int64_t last_read_ms; /* epoch_ms_to_iso of the last read time */
    char created[32];
    int created_n;
    int64_t created_day;
} Encoder;

typedef struct {
    const unsigned char *kp, *p; /* key and value (strings unescaped; numbers: the token) */
    Py_ssize_t kn, n;
    int64_t i;
    uint8_t type, nonascii, esc;
} Val;

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    int64_t i;
    uint8_t set, is_int, plain;
} Slot;

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
} Str;

/* Per-call state of the line scan. */
typedef struct {
    char *w; /* message output position */
    const unsigned char *mflush;
    unsigned char *scr; /* scratch output position (unescaped strings) */
} Scan;

#define MSG_ESC(sc, q, c)                                        \
    do {                                                         \
        size_t k_ = (size_t)((q) - (sc)->mflush);                \
        memcpy((sc)->w, (sc)->mflush, k_);                       \
        (sc)->w += k_;                                           \
        (sc)->w[0] = '\\';                                       \
        (sc)->w[1] = (c);                                        \
        (sc)->w += 2;                                            \
        (sc)->mflush = (q) + 1;                                  \
    } while (0)

/* A JSON string; p is at the opening quote. Returns the byte after the closing quote, NULL to
 * decline. Unescaped text goes to the scratch buffer only when the string has escapes. */
static const unsigned char *scan_string(Scan *sc, const unsigned char *p, const unsigned char *end,
                                        const unsigned char **sp, Py_ssize_t *sn, uint8_t *na, uint8_t *esc) {
    MSG_ESC(sc, p, '"');
    p++;
    const unsigned char *s = p, *seg = p;
    unsigned char *dst = NULL, *dst0 = NULL;
    uint8_t nonascii = 0;
    for (;;) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        while (end - p >= 8) {
            uint64_t v, q, b;
            const uint64_t ones = 0x0101010101010101ULL;
            memcpy(&v, p, 8);
            q = v ^ (ones * '"');
            b = v ^ (ones * '\\');
            uint64_t m = (v | ((v - ones * 0x20) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b)) & (ones * 0x80);
            if (m) {
                p += __builtin_ctzll(m) >> 3;
                break;
            }
            p += 8;
        }
#endif
        unsigned c = *p; /* the bytes object's NUL sentinel stops us at the end */
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            if (dst == NULL)
                dst = dst0 = sc->scr;
            memcpy(dst, seg, (size_t)(p - seg));
            dst += p - seg;
            MSG_ESC(sc, p, '\\');
            unsigned e = p[1];
            switch (e) {
            case '"': MSG_ESC(sc, p + 1, '"'); *dst++ = '"'; p += 2; break;
            case '\\': MSG_ESC(sc, p + 1, '\\'); *dst++ = '\\'; p += 2; break;
            case '/': *dst++ = '/'; p += 2; break;
            case 'b': *dst++ = '\b'; p += 2; break;
            case 'f': *dst++ = '\f'; p += 2; break;
            case 'n': *dst++ = '\n'; p += 2; break;
            case 'r': *dst++ = '\r'; p += 2; break;
            case 't': *dst++ = '\t'; p += 2; break;
            case 'u': {
                int h0 = hexval(p[2]), h1 = h0 < 0 ? -1 : hexval(p[3]), h2 = h1 < 0 ? -1 : hexval(p[4]),
                    h3 = h2 < 0 ? -1 : hexval(p[5]);
                if (h3 < 0)
                    return NULL;
                unsigned cp = (unsigned)((h0 << 12) | (h1 << 8) | (h2 << 4) | h3);
                if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    return NULL;
                if (cp < 0x80) {
                    *dst++ = (unsigned char)cp;
                } else if (cp < 0x800) {
                    *dst++ = (unsigned char)(0xC0 | (cp >> 6));
                    *dst++ = (unsigned char)(0x80 | (cp & 0x3F));
                    nonascii = 1;
                } else {
                    *dst++ = (unsigned char)(0xE0 | (cp >> 12));
                    *dst++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                    *dst++ = (unsigned char)(0x80 | (cp & 0x3F));
                    nonascii = 1;
                }
                p += 6;
                break;
            }
            default:
                return NULL;
            }
            seg = p;
            continue;
        }
        if (c < 0x20)
            return NULL; /* a raw control character (or the end of the line) */
        int k = utf8_seq(p);
        if (k == 0)
            return NULL;
        nonascii = 1;
        p += k;
    }
    if (dst != NULL) {
        memcpy(dst, seg, (size_t)(p - seg));
        dst += p - seg;
        *sp = dst0;
        *sn = dst - dst0;
        sc->scr = dst;
        *esc = 1;
    } else {
        *sp = s;
        *sn = p - s;
        *esc = 0;
    }
    *na = nonascii;
    MSG_ESC(sc, p, '"');
    return p + 1;
}

static inline const unsigned char *skip_ws(Scan *sc, const unsigned char *p) {
    for (;;) {
        unsigned c = *p;
        if (c == ' ') {
            p++;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            MSG_ESC(sc, p, c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
            p++;
        } else {
            return p;
        }
    }
}

/* The whole line: one JSON object of scalars. Fills vals and the layout (keys, each followed by a
 * NUL), writes the escaped message at sc->w. Returns the number of keys, -1 to decline. */
static int scan_line(Scan *sc, const unsigned char *start, Py_ssize_t len, const unsigned char *msg_end, Val *vals,
                     char *layout, Py_ssize_t *layout_n) {
    const unsigned char *p = start, *end = start + len;
    char *lw = layout;
    int n = 0;
    p = skip_ws(sc, p);
    if (*p != '{')
        return -1;
    p = skip_ws(sc, p + 1);
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            if (*p != '"' || n == MAX_KEYS)
                return -1;
            Val *v = &vals[n++];
            uint8_t kna, kesc;
            p = scan_string(sc, p, end, &v->kp, &v->kn, &kna, &kesc);
            if (p == NULL)
                return -1;
            memcpy(lw, v->kp, (size_t)v->kn);
            lw += v->kn;
            *lw++ = '\0';
            p = skip_ws(sc, p);
            if (*p != ':')
                return -1;
            p = skip_ws(sc, p + 1);
            unsigned c = *p;
            v->nonascii = 0;
            v->esc = 0;
            if (c == '"') {
                v->type = V_STR;
                p = scan_string(sc, p, end, &v->p, &v->n, &v->nonascii, &v->esc);
                if (p == NULL)
                    return -1;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                const unsigned char *t = p;
                int neg = c == '-';
                p += neg;
                int64_t acc = 0;
                int digits = 0;
                if (*p == '0') {
                    p++;
                    digits = 1;
                } else if (*p >= '1' && *p <= '9') {
                    while (*p >= '0' && *p <= '9') {
                        if (++digits > 18)
                            return -1;
                        acc = acc * 10 + (*p++ - '0');
                    }
                } else {
                    return -1;
                }
                if (*p == '.') {
                    p++;
                    if (!(*p >= '0' && *p <= '9'))
                        return -1;
                    while (*p >= '0' && *p <= '9')
                        p++;
                    v->type = V_FLOAT;
                } else {
                    if (neg && acc == 0)
                        return -1; /* "-0" */
                    v->type = V_INT;
                }
                if (*p == 'e' || *p == 'E')
                    return -1;
                v->i = neg ? -acc : acc;
                v->p = t;
                v->n = p - t;
            } else if (c == 't' && end - p >= 4 && memcmp(p, "true", 4) == 0) {
                v->type = V_TRUE;
                p += 4;
            } else if (c == 'f' && end - p >= 5 && memcmp(p, "false", 5) == 0) {
                v->type = V_FALSE;
                p += 5;
            } else if (c == 'n' && end - p >= 4 && memcmp(p, "null", 4) == 0) {
                v->type = V_NULL;
                p += 4;
            } else {
                return -1; /* objects, arrays, invalid JSON */
            }
            p = skip_ws(sc, p);
            if (*p == ',') {
                p = skip_ws(sc, p + 1);
                continue;
            }
            if (*p != '}')
                return -1;
            p++;
            break;
        }
    }
    /* trailing whitespace: the message is the line without its trailing CR/LF characters */
    while (p < end) {
        unsigned c = *p;
        if (c == ' ') {
        } else if (c == '\n' || c == '\r' || c == '\t') {
            if (p < msg_end)
                MSG_ESC(sc, p, c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else {
            return -1;
        }
        p++;
    }
    memcpy(sc->w, sc->mflush, (size_t)(msg_end - sc->mflush));
    sc->w += msg_end - sc->mflush;
    *layout_n = lw - layout;
    return n;
}

/* ---------------------------------------------------------------- times */

/* epoch ms -> "YYYY-MM-DDTHH:MM:SS[.mmm]Z" (parsers/timestamps.py epoch_ms_to_iso); 0 past year 9999. */
static int iso_of_ms(int64_t ms, char *out, int *n, int64_t *day) {
    if (ms < 0 || ms > 253402300799999LL)
        return 0;
    int64_t days = ms / 86400000, rem = ms % 86400000;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned sec = (unsigned)(rem / 1000), frac = (unsigned)(rem % 1000);
    put2(out, (unsigned)(y / 100));
    put2(out + 2, (unsigned)(y % 100));
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = 'T';
    put2(out + 11, sec / 3600);
    out[13] = ':';
    put2(out + 14, sec / 60 % 60);
    out[16] = ':';
    put2(out + 17, sec % 60);
    int k = 19;
    if (frac) {
        out[k++] = '.';
        out[k++] = (char)('0' + frac / 100);
        out[k++] = (char)('0' + frac / 10 % 10);
        out[k++] = (char)('0' + frac % 10);
    }
    out[k++] = 'Z';
    *n = k;
    *day = days;
    return 1;
}

static inline int dig2(const unsigned char *p, unsigned *v) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return 0;
    *v = (unsigned)(p[0] - '0') * 10 + (unsigned)(p[1] - '0');
    return 1;
}

/* YYYY-MM-DDTHH:MM:SS(.fff|.ffffff)?(Z|[+-]HH:MM), valid for datetime.fromisoformat. Epoch microseconds,
 * and in iso (>= 33 bytes, *iso_n) the text parsers/timestamps.py to_iso writes for it: the fraction as
 * 3 digits when it is whole milliseconds, none when zero, else 6; an offset of +-00:00 as "Z".
 * 0 = decline. */
static int parse_event_time(const unsigned char *p, Py_ssize_t n, int64_t *us, char *iso, Py_ssize_t *iso_n) {
    if (n < 20 || n > 32)
        return 0;
    unsigned yh, yl, mo, d, h, mi, s;
    if (!dig2(p, &yh) || !dig2(p + 2, &yl) || p[4] != '-' || !dig2(p + 5, &mo) || p[7] != '-' || !dig2(p + 8, &d) ||
        p[10] != 'T' || !dig2(p + 11, &h) || p[13] != ':' || !dig2(p + 14, &mi) || p[16] != ':' || !dig2(p + 17, &s))
        return 0;
    unsigned y = yh * 100 + yl;
    static const unsigned char mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return 0;
    unsigned dim = mdays[mo] + (mo == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)));
    if (d > dim)
        return 0;
    Py_ssize_t k = 19;
    int64_t frac = 0;
    if (p[k] == '.') {
        Py_ssize_t f = 0;
        k++;
        while (k < n && p[k] >= '0' && p[k] <= '9') {
            frac = frac * 10 + (p[k] - '0');
            k++;
            f++;
        }
        if (f != 3 && f != 6)
            return 0;
        if (f == 3)
            frac *= 1000;
    }
    memcpy(iso, p, 19);
    Py_ssize_t m = 19;
    if (frac) {
        int digits = frac % 1000 ? 6 : 3;
        int64_t v = digits == 6 ? frac : frac / 1000;
        iso[m++] = '.';
        for (int i = digits - 1; i >= 0; i--, v /= 10)
            iso[m + i] = (char)('0' + v % 10);
        m += digits;
    }
    int64_t off = 0;
    if (k == n - 1 && p[k] == 'Z') {
        iso[m++] = 'Z';
    } else if (k == n - 6 && (p[k] == '+' || p[k] == '-') && p[k + 3] == ':') {
        unsigned oh, om;
        if (!dig2(p + k + 1, &oh) || !dig2(p + k + 4, &om) || oh > 23 || om > 59)
            return 0;
        off = (int64_t)(oh * 3600 + om * 60);
        if (p[k] == '-')
            off = -off;
        if (off == 0) {
            iso[m++] = 'Z';
        } else {
            memcpy(iso + m, p + k, 6);
            m += 6;
        }
    } else {
        return 0;
    }
    *iso_n = m;
    int64_t days = days_from_civil((int64_t)y, mo, d);
    int64_t secs = days * 86400 + (int64_t)(h * 3600 + mi * 60 + s) - off;
    *us = secs * 1000000 + frac;
    return 1;
}

/* ---------------------------------------------------------------- numbers */

/* A decimal of ASCII digits with at most one '.' (validated by the caller) as Python's float() reads it.
 * 0 = decline (MemoryError is set when that was the cause). */
static int decimal_to_double(const unsigned char *p, Py_ssize_t n, double *out) {
    static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    /* Exact fast path: <= 15 significant digits and a power of ten <= 1e22 (correctly rounded). */
    uint64_t mant = 0;
    int sig = 0, frac = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '.') {
            frac = 0;
            continue;
        }
        if (frac >= 0)
            frac++;
        if (mant == 0 && p[i] == '0')
            continue;
        mant = mant * 10 + (uint64_t)(p[i] - '0');
        if (++sig > 15)
            break;
    }
    if (sig <= 15 && frac <= 22) {
        *out = frac > 0 ? (double)mant / P10[frac] : (double)mant;
        return 1;
    }
    char buf[512];
    if (n >= (Py_ssize_t)sizeof buf)
        return 0;
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    char *endp = NULL;
    double x = PyOS_string_to_double(buf, &endp, NULL);
    if (x == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_MemoryError))
            PyErr_Clear();
        return 0;
    }
    if (endp != buf + n)
        return 0;
    *out = x;
    return 1;
}

/* ---------------------------------------------------------------- headers */

static int header_index(PyObject *k) {
    if (!PyUnicode_IS_COMPACT_ASCII(k))
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(k);
    const char *s = (const char *)PyUnicode_DATA(k);
    if (n < 6 || s[0] != 'l' || s[1] != 'p' || s[2] != '.')
        return -1;
    s += 3;
    switch (n - 3) {
    case 3:
        return memcmp(s, "pod", 3) == 0 ? H_POD : -1;
    case 4:
        if (memcmp(s, "type", 4) == 0)
            return H_TYPE;
        if (memcmp(s, "node", 4) == 0)
            return H_NODE;
        if (memcmp(s, "path", 4) == 0)
            return H_PATH;
        if (memcmp(s, "meta", 4) == 0)
            return H_META;
        return -1;
    case 5:
        return memcmp(s, "flags", 5) == 0 ? H_FLAGS : -1;
    case 6:
        if (memcmp(s, "offset", 6) == 0)
            return H_OFFSET;
        return memcmp(s, "format", 6) == 0 ? H_FORMAT : -1;
    case 7:
        if (memcmp(s, "file_id", 7) == 0)
            return H_FILE_ID;
        if (memcmp(s, "read_ts", 7) == 0)
            return H_READ_TS;
        if (memcmp(s, "pod_uid", 7) == 0)
            return H_POD_UID;
        return -1;
    case 9:
        if (memcmp(s, "namespace", 9) == 0)
            return H_NAMESPACE;
        if (memcmp(s, "component", 9) == 0)
            return H_COMPONENT;
        if (memcmp(s, "container", 9) == 0)
            return H_CONTAINER;
        return -1;
    default:
        return -1;
    }
}

/* document.py _digits: 1..18 ASCII digits. */
static int digits_value(Str s, int64_t *out) {
    if (s.n < 1 || s.n > 18)
        return 0;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return 1;
}

/* lp.format (a shipper rule's access format): absent, "auto" or "json" lets a JSON line be encoded here. */
static int format_is_json(Str f) {
    return f.n == 0 || (f.n == 4 && (memcmp(f.p, "json", 4) == 0 || memcmp(f.p, "auto", 4) == 0));
}

/* lp.meta (envelope.py META_FIELDS): "2" NUL node NUL namespace ... NUL read_ts NUL flags. 1 ok, 0 decline
   (another version or a malformed value: the Python path says why). */
static int read_meta(const unsigned char *p, Py_ssize_t n, Str *h) {
    static const int order[12] = {H_NODE, H_NAMESPACE, H_POD,     H_POD_UID,  H_CONTAINER, H_COMPONENT,
                                  H_TYPE, H_PATH,      H_FORMAT,  H_FILE_ID,  H_READ_TS,   H_FLAGS};
    if (n < 2 || p[0] != '2' || p[1] != 0)
        return 0;
    const unsigned char *s = p + 2, *end = p + n;
    for (int i = 0; i < 12; i++) {
        const unsigned char *z = i < 11 ? memchr(s, 0, (size_t)(end - s)) : end;
        if (z == NULL)
            return 0;
        h[order[i]].p = s;
        h[order[i]].n = z - s;
        s = z + 1;
    }
    return memchr(h[H_FLAGS].p, 0, (size_t)h[H_FLAGS].n) == NULL; /* exactly 13 fields */
}

/* decode_headers + Draft: 1 ok, 0 decline. */
static int read_headers(PyObject *headers, Str *h, Py_ssize_t *total) {
    PyObject **items;
    Py_ssize_t n;
    if (PyTuple_CheckExact(headers)) {
        items = &PyTuple_GET_ITEM(headers, 0);
        n = PyTuple_GET_SIZE(headers);
    } else if (PyList_CheckExact(headers)) {
        items = PySequence_Fast_ITEMS(headers);
        n = PyList_GET_SIZE(headers);
    } else {
        return 0;
    }
    if (n == 0)
        return 0;
    Py_ssize_t sum = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = items[i], *k, *v;
        if (PyTuple_CheckExact(it) && PyTuple_GET_SIZE(it) == 2) {
            k = PyTuple_GET_ITEM(it, 0);
            v = PyTuple_GET_ITEM(it, 1);
        } else if (PyList_CheckExact(it) && PyList_GET_SIZE(it) == 2) {
            k = PyList_GET_ITEM(it, 0);
            v = PyList_GET_ITEM(it, 1);
        } else {
            return 0;
        }
        if (!PyUnicode_CheckExact(k) || !PyBytes_CheckExact(v))
            return 0;
        if (PyUnicode_READY(k) < 0) {
            PyErr_Clear();
            return 0;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(v);
        Py_ssize_t vn = PyBytes_GET_SIZE(v);
        if (!utf8_valid(p, vn))
            return 0;
        int idx = header_index(k);
        if (idx == H_META) {
            if (!read_meta(p, vn, h))
                return 0;
        } else if (idx >= 0) { /* later duplicates win, as in the dict */
            h[idx].p = p;
            h[idx].n = vn;
        }
        sum += vn;
    }
    *total = sum;
    return 1;
}

/* ---------------------------------------------------------------- steps */

typedef struct {
    Slot slot[NSLOTS];
    Str flags[MAX_FLAGS];
    uint8_t flag_plain[MAX_FLAGS];
    int nflags;
    int keep[MAX_KEYS];
    int nkeep;
    char ts[40]; /* @timestamp from the line, as to_iso writes it */
    Py_ssize_t ts_n;
    int64_t ts_day;
    char level[33];
    int has_time;
} Doc;

static void flag(Doc *doc, const char *p, Py_ssize_t n) {
    for (int i = 0; i < doc->nflags; i++)
        if (doc->flags[i].n == n && memcmp(doc->flags[i].p, p, (size_t)n) == 0)
            return;
    doc->flags[doc->nflags].p = (const unsigned char *)p;
    doc->flags[doc->nflags].n = n;
    doc->flag_plain[doc->nflags] = 0;
    doc->nflags++;
}

static inline void set_str(Slot *s, const unsigned char *p, Py_ssize_t n, int plain) {
    s->set = 1;
    s->is_int = 0;
    s->p = p;
    s->n = n;
    s->plain = (uint8_t)plain;
}

static inline void set_int(Slot *s, int64_t v) {
    s->set = 1;
    s->is_int = 1;
    s->i = v;
}

static inline Py_ssize_t str_chars(const Val *v) { return v->nonascii ? cp_len(v->p, v->n) : v->n; }

/* to_keyword: 1 = a string (p, n), 0 = invalid, -1 = decline. */
static int keyword_of(const Val *v, const unsigned char **p, Py_ssize_t *n) {
    if (v->type == V_STR) {
        if (v->n > MAX_KEYWORD_CHARS && str_chars(v) > MAX_KEYWORD_CHARS)
            return 0;
        *p = v->p;
        *n = v->n;
        return 1;
    }
    if (v->type == V_INT) {
        *p = v->p;
        *n = v->n;
        return 1;
    }
    return -1; /* floats (str(float)) and booleans */
}

static const char *const LEVEL_NAMES[7] = {NULL, "trace", "debug", "info", "warn", "error", "fatal"};

static int run_step(Encoder *e, const Step *st, const Val *v, const Str *hdr, Doc *doc, int64_t read_ms) {
    Slot *slot = st->slot >= 0 ? &doc->slot[st->slot] : NULL;
    int plain = !v->esc;
    switch (st->action) {
    case A_KEYWORD: {
        const unsigned char *p;
        Py_ssize_t n;
        int r = keyword_of(v, &p, &n);
        if (r < 0)
            return OUT_DECLINE;
        if (r == 0)
            return OUT_INVALID;
        set_str(slot, p, n, plain);
        return OUT_OK;
    }
    case A_LONG:
    case A_STATUS: {
        int64_t x;
        if (v->type == V_INT) {
            x = v->i;
            if (x < 0)
                return OUT_INVALID;
        } else if (v->type == V_STR) {
            Str s = {v->p, v->n};
            if (!digits_value(s, &x))
                return OUT_INVALID;
        } else {
            return OUT_DECLINE;
        }
        if (st->action == A_STATUS && x > 999)
            return OUT_INVALID;
        set_int(slot, x);
        return OUT_OK;
    }
    case A_IP: {
        if (v->type != V_STR)
            return OUT_DECLINE;
        if (v->n > 256 && str_chars(v) > 256)
            return OUT_INVALID;
        const unsigned char *a = v->p, *b = v->p + v->n;
        const unsigned char *comma = memchr(a, ',', (size_t)v->n);
        if (comma)
            b = comma;
        while (a < b && py_space(*a))
            a++;
        while (b > a && py_space(b[-1]))
            b--;
        char ip[16];
        unsigned char bin[4];
        if (b - a < 7 || b - a > 15)
            return OUT_DECLINE;
        memcpy(ip, a, (size_t)(b - a));
        ip[b - a] = '\0';
        if (inet_pton(AF_INET, ip, bin) != 1)
            return OUT_DECLINE; /* IPv6 and the rest: the Python path */
        set_str(slot, a, b - a, 1);
        return OUT_OK;
    }
    case A_LEVEL: {
        if (v->type == V_STR) {
            if (v->n > 32 && str_chars(v) > 32)
                return OUT_INVALID;
            if (v->nonascii)
                return OUT_DECLINE;
            for (Py_ssize_t i = 0; i < v->n; i++) {
                unsigned char c = v->p[i];
                doc->level[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            set_str(slot, (const unsigned char *)doc->level, v->n, plain);
            return OUT_OK;
        }
        if (v->type == V_INT) {
            if (v->i % 10 == 0 && v->i >= 10 && v->i <= 60) {
                const char *nm = LEVEL_NAMES[v->i / 10];
                set_str(slot, (const unsigned char *)nm, (Py_ssize_t)strlen(nm), 1);
                return OUT_OK;
            }
            return OUT_INVALID;
        }
        return OUT_DECLINE;
    }
    case A_TRACE: {
        const unsigned char *p;
        Py_ssize_t n;
        int r = keyword_of(v, &p, &n);
        if (r < 0)
            return OUT_DECLINE;
        if (r == 0)
            return OUT_INVALID;
        if (v->nonascii)
            return OUT_DECLINE;
        if (n == 55 && p[2] == '-' && p[35] == '-' && p[52] == '-') {
            p += 3;
            n = 32;
        }
        set_str(slot, p, n, plain);
        return OUT_OK;
    }
    case A_TIME: {
        if (v->type != V_STR)
            return OUT_DECLINE;
        int64_t us;
        char iso[40];
        Py_ssize_t iso_n;
        if (!parse_event_time(v->p, v->n, &us, iso, &iso_n) || us >= TWO53 || us <= -TWO53)
            return OUT_DECLINE;
        double delta = (double)us / 1e6 - (double)read_ms / 1000.0;
        if ((e->has_future && delta > e->max_future) || (e->has_past && -delta > e->max_past)) {
            flag(doc, "timestamp_out_of_range", 22);
            return OUT_KEEP;
        }
        memcpy(doc->ts, iso, (size_t)iso_n);
        doc->ts_n = iso_n;
        doc->ts_day = floor_div(us, 86400000000LL);
        return OUT_TIME;
    }
    case A_DURATION: {
        double x;
        if (v->type == V_INT) {
            if (v->i < 0)
                return OUT_DECLINE;
            x = (double)v->i;
        } else if (v->type == V_FLOAT) {
            if (v->p[0] == '-')
                return OUT_DECLINE;
            if (!decimal_to_double(v->p, v->n, &x))
                return OUT_DECLINE;
        } else if (v->type == V_STR) {
            if (memchr(v->p, ',', (size_t)v->n) || memchr(v->p, ':', (size_t)v->n))
                return OUT_DECLINE; /* a list of upstream times: summed by the Python path */
            if (v->nonascii)
                return OUT_DECLINE;
            const unsigned char *a = v->p, *b = v->p + v->n;
            while (a < b && py_space(*a))
                a++;
            while (b > a && py_space(b[-1]))
                b--;
            int dots = 0, digits = 0;
            for (const unsigned char *q = a; q < b; q++) {
                if (*q == '.')
                    dots++;
                else if (*q >= '0' && *q <= '9')
                    digits++;
                else
                    return OUT_INVALID;
            }
            if (dots > 1 || digits == 0)
                return OUT_INVALID;
            if (!decimal_to_double(a, b - a, &x))
                return OUT_DECLINE;
        } else {
            return OUT_DECLINE;
        }
        double prod = x * (double)st->arg;
        if (!isfinite(prod))
            return OUT_DECLINE; /* Python's round() raises */
        if (prod >= 9223372036854775808.0)
            return OUT_INVALID;
        set_int(slot, (int64_t)nearbyint(prod));
        return OUT_OK;
    }
    case A_PATH: {
        if (v->type != V_STR)
            return OUT_DECLINE;
        if (v->n > MAX_KEYWORD_CHARS && str_chars(v) > MAX_KEYWORD_CHARS)
            return OUT_INVALID;
        const unsigned char *p = v->p, *end = v->p + v->n;
        for (const unsigned char *q = p; q + 2 < end; q++)
            if (q[0] == ':' && q[1] == '/' && q[2] == '/')
                return OUT_DECLINE; /* a URL: urlsplit in the Python path */
        const unsigned char *qm = memchr(p, '?', (size_t)v->n);
        if (qm) {
            if (qm + 1 < end && st->arg)
                set_str(&doc->slot[S_URL_QUERY], qm + 1, end - qm - 1, plain);
            set_str(slot, p, qm - p, plain);
        } else {
            set_str(slot, p, v->n, plain);
        }
        return OUT_OK;
    }
    case A_KEEP:
        return OUT_KEEP;
    case A_FROM_HEADER: {
        const unsigned char *p;
        Py_ssize_t n;
        int r = keyword_of(v, &p, &n);
        if (r < 0)
            return OUT_DECLINE;
        static const int which[3] = {H_COMPONENT, H_NAMESPACE, H_POD};
        Str h = hdr[which[st->arg]];
        if (h.n > 0)
            return (r == 1 && n == h.n && memcmp(p, h.p, (size_t)n) == 0) ? OUT_OK : OUT_KEEP;
        if (r == 0)
            return OUT_INVALID;
        set_str(slot, p, n, plain);
        return OUT_OK;
    }
    default:
        return OUT_DECLINE;
    }
}

/* ---------------------------------------------------------------- writing */

static char *put_slot(char *w, const Slot *s) {
    if (s->is_int)
        return put_int(w, s->i);
    if (s->plain)
        return put_plain(w, s->p, s->n);
    return put_str(w, s->p, s->n);
}

/* "name":value inside an object; *first tracks the comma. */
#define MEMBER(w, first, lit)     \
    do {                          \
        if (!(first))             \
            *(w)++ = ',';         \
        (first) = 0;              \
        PUT_LIT((w), lit);        \
    } while (0)

/* A member holding a slot's value, when the slot is set. */
#define SLOT_MEMBER(w, first, lit, slot)      \
    do {                                      \
        if ((slot).set) {                     \
            MEMBER((w), (first), lit);        \
            (w) = put_slot((w), &(slot));     \
        }                                     \
    } while (0)

/* ,"a":{"b":<slot>} for an object of one member, when the slot is set. */
#define SLOT_OBJECT(w, lit, slot)             \
    do {                                      \
        if ((slot).set) {                     \
            PUT_LIT((w), lit);                \
            (w) = put_slot((w), &(slot));     \
            *(w)++ = '}';                     \
        }                                     \
    } while (0)

/* One extra value; 1 written, 0 skipped (null), -1 decline. */
static int put_extra_value(Encoder *e, char **wp, const Val *v) {
    char *w = *wp;
    switch (v->type) {
    case V_NULL:
        return 0;
    case V_STR:
        if (v->n > e->max_value_chars && str_chars(v) > e->max_value_chars)
            return -1; /* cut and flagged extra_truncated by the Python path */
        w = v->esc ? put_str(w, v->p, v->n) : put_plain(w, v->p, v->n);
        break;
    case V_INT:
        w = put_plain(w, v->p, v->n);
        break;
    case V_TRUE:
        PUT_LIT(w, "\"true\"");
        break;
    case V_FALSE:
        PUT_LIT(w, "\"false\"");
        break;
    default:
        return -1; /* str(float): the Python path */
    }
    *wp = w;
    return 1;
}

/* ---------------------------------------------------------------- encode */

static PyObject *decline(void) { Py_RETURN_NONE; }

/* The plan for this layout: 1 found (*plan may be NULL: declined layout), -1 error. */
static int lookup_plan(Encoder *e, const char *layout, Py_ssize_t layout_n, const Val *vals, int nkeys, Plan **plan) {
    if (e->have_last && e->last_key_n == layout_n && memcmp(e->last_key, layout, (size_t)layout_n) == 0) {
        *plan = e->last_plan;
        return 1;
    }
    if (e->cache == NULL || e->plan_fn == NULL) {
        *plan = NULL;
        return 1;
    }
    PyObject *key = PyBytes_FromStringAndSize(layout, layout_n);
    if (key == NULL)
        return -1;
    PyObject *val = PyDict_GetItemWithError(e->cache, key);
    if (val != NULL) {
        Py_INCREF(val);
    } else {
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return -1;
        }
        /* A miss: ask Python (plan_fn may run any code; encode is not re-entered meanwhile). */
        e->busy = 1;
        PyObject *keys = PyTuple_New(nkeys);
        PyObject *res = NULL;
        if (keys != NULL) {
            for (int i = 0; i < nkeys; i++) {
                PyObject *s = PyUnicode_DecodeUTF8((const char *)vals[i].kp, vals[i].kn, NULL);
                if (s == NULL) {
                    Py_CLEAR(keys);
                    break;
                }
                PyTuple_SET_ITEM(keys, i, s);
            }
        }
        if (keys != NULL) {
            PyObject *fn = Py_NewRef(e->plan_fn);
            res = PyObject_CallOneArg(fn, keys);
            Py_DECREF(fn);
            Py_DECREF(keys);
        }
        e->busy = 0;
        if (res == NULL) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
                Py_DECREF(key);
                return -1;
            }
            PyErr_Clear(); /* a failing plan function: this layout goes to the Python path */
            res = Py_NewRef(Py_None);
        }
        if (res == Py_None) {
            val = res;
        } else {
            Plan *pl;
            int r = compile_plan(res, nkeys, &pl);
            Py_DECREF(res);
            if (r < 0) {
                Py_DECREF(key);
                return -1;
            }
            if (r == 0) {
                val = Py_NewRef(Py_None);
            } else {
                val = PyCapsule_New(pl, CAPSULE_NAME, plan_capsule_free);
                if (val == NULL) {
                    PyMem_RawFree(pl);
                    Py_DECREF(key);
                    return -1;
                }
            }
        }
        if (e->cache == NULL) { /* cleared while plan_fn ran */
            Py_DECREF(key);
            Py_DECREF(val);
            *plan = NULL;
            e->have_last = 0;
            return 1;
        }
        if (PyDict_GET_SIZE(e->cache) >= MAX_LAYOUTS)
            PyDict_Clear(e->cache);
        if (PyDict_SetItem(e->cache, key, val) < 0) {
            Py_DECREF(key);
            Py_DECREF(val);
            return -1;
        }
    }
    Py_DECREF(key);
    if (layout_n + 1 > e->last_key_cap) {
        char *nk = PyMem_Realloc(e->last_key, (size_t)layout_n + 1);
        if (nk == NULL) {
            Py_DECREF(val);
            PyErr_NoMemory();
            return -1;
        }
        e->last_key = nk;
        e->last_key_cap = layout_n + 1;
    }
    memcpy(e->last_key, layout, (size_t)layout_n);
    e->last_key_n = layout_n;
    Py_XSETREF(e->last_obj, val);
    e->last_plan = val == Py_None ? NULL : PyCapsule_GetPointer(val, CAPSULE_NAME);
    e->have_last = 1;
    *plan = e->last_plan;
    return 1;
}

static PyObject *index_name(Encoder *e, const char *day) {
    if (e->last_index != NULL && memcmp(e->last_index_day, day, 10) == 0)
        return Py_NewRef(e->last_index);
    char buf[512];
    char *name = e->prefix_n + 18 <= (Py_ssize_t)sizeof buf ? buf : PyMem_Malloc((size_t)e->prefix_n + 18);
    if (name == NULL)
        return PyErr_NoMemory();
    memcpy(name, e->prefix, (size_t)e->prefix_n);
    memcpy(name + e->prefix_n, "-access-", 8);
    memcpy(name + e->prefix_n + 8, day, 10);
    PyObject *s = PyUnicode_DecodeUTF8(name, e->prefix_n + 18, NULL);
    if (name != buf)
        PyMem_Free(name);
    if (s == NULL)
        return NULL;
    Py_XSETREF(e->last_index, Py_NewRef(s));
    memcpy(e->last_index_day, day, 10);
    return s;
}

static PyObject *encode_impl(Encoder *e, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode(value, headers, ingested) takes 3 arguments");
        return NULL;
    }
    PyObject *value = args[0], *headers = args[1], *ingested = args[2];
    if (e->busy || !PyBytes_CheckExact(value) || !PyUnicode_CheckExact(ingested) || headers == Py_None)
        return decline();
    Py_ssize_t ing_n;
    const char *ing = PyUnicode_AsUTF8AndSize(ingested, &ing_n);
    if (ing == NULL) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError))
            return NULL;
        PyErr_Clear();
        return decline();
    }
    const unsigned char *line = (const unsigned char *)PyBytes_AS_STRING(value);
    Py_ssize_t len = PyBytes_GET_SIZE(value);
    const unsigned char *msg_end = line + len;
    while (msg_end > line && (msg_end[-1] == '\n' || msg_end[-1] == '\r'))
        msg_end--;

    /* The message is written during the scan, after the action line's place. */
    Py_ssize_t doc_off = e->head_n;
    if (buf_reserve(&e->out, doc_off + 16 + 2 * len) < 0 || buf_reserve(&e->scratch, len + 1) < 0 ||
        buf_reserve(&e->layout, len + 1) < 0)
        return NULL;
    char *w = e->out.p + doc_off;
    PUT_LIT(w, "{\"message\":\"");
    Scan sc = {w, line, (unsigned char *)e->scratch.p};
    Val vals[MAX_KEYS];
    Py_ssize_t layout_n = 0;
    int nkeys = scan_line(&sc, line, len, msg_end, vals, e->layout.p, &layout_n);
    if (nkeys < 0)
        return decline();
    w = sc.w;
    *w++ = '"';
    Py_ssize_t used = w - e->out.p;

    Plan *plan;
    if (lookup_plan(e, e->layout.p, layout_n, vals, nkeys, &plan) < 0)
        return NULL;
    if (plan == NULL || plan->nkeys != nkeys)
        return decline();

    /* Headers: read after the plan, since plan_fn may run Python code that changes a headers list. */
    Str h[NHEADERS];
    memset(h, 0, sizeof h);
    Py_ssize_t htotal = 0;
    if (!read_headers(headers, h, &htotal))
        return decline();
    if (h[H_TYPE].n != 6 || memcmp(h[H_TYPE].p, "access", 6) != 0 || h[H_FILE_ID].n == 0)
        return decline();
    if (!format_is_json(h[H_FORMAT]))
        return decline(); /* a rule chose a text format (or one unknown here): the Python path */
    int64_t offset, read_ms;
    if (!digits_value(h[H_OFFSET], &offset) || !digits_value(h[H_READ_TS], &read_ms))
        return decline();
    if (read_ms != e->last_read_ms || e->created_n == 0) {
        if (!iso_of_ms(read_ms, e->created, &e->created_n, &e->created_day)) {
            e->created_n = 0;
            return decline();
        }
        e->last_read_ms = read_ms;
    }

    Doc doc;
    memset(doc.slot, 0, sizeof doc.slot);
    doc.nflags = 0;
    doc.nkeep = 0;
    doc.has_time = 0;
    if (h[H_FLAGS].n > 0) { /* shipped flags, in order, duplicates kept */
        const unsigned char *p = h[H_FLAGS].p, *end = p + h[H_FLAGS].n;
        while (p <= end) {
            const unsigned char *c = memchr(p, ',', (size_t)(end - p));
            if (c == NULL)
                c = end;
            if (c > p) {
                if (doc.nflags == MAX_SHIPPED_FLAGS)
                    return decline();
                doc.flags[doc.nflags].p = p;
                doc.flags[doc.nflags].n = c - p;
                doc.flag_plain[doc.nflags] = 0;
                doc.nflags++;
            }
            p = c + 1;
        }
    }
    for (int i = 0; i < plan->nsteps; i++) {
        const Step *st = &plan->steps[i];
        const Val *v = &vals[st->pos];
        if (v->type == V_STR && v->n == 1 && v->p[0] == '-' &&
            (st->action == A_LONG || st->action == A_STATUS || st->action == A_DURATION))
            return decline(); /* "-" for a number: flagged missing_<field> by the Python path */
        if (v->type == V_NULL || (v->type == V_STR && ((v->n == 0 && st->action != A_KEYWORD && st->action != A_PATH) ||
                                                       (v->n == 1 && v->p[0] == '-'))))
            continue; /* absent (text fields keep an empty string: FieldMap.keeps_empty) */
        switch (run_step(e, st, v, h, &doc, read_ms)) {
        case OUT_OK:
            break;
        case OUT_INVALID:
            flag(&doc, st->flag, st->flag_n);
            doc.keep[doc.nkeep++] = st->pos;
            break;
        case OUT_KEEP:
            doc.keep[doc.nkeep++] = st->pos;
            break;
        case OUT_TIME:
            doc.has_time = 1;
            break;
        default:
            return decline();
        }
    }
    if (!doc.has_time)
        flag(&doc, "timestamp_fallback", 18);

    /* The rest of the document: a bound on its size, then unchecked writes. */
    Py_ssize_t bound = used + 6 * (len + htotal + ing_n + plan->flags_total) + plan->names_total + 8192;
    if (buf_grow(&e->out, bound) < 0)
        return NULL;
    w = e->out.p + used;

    PUT_LIT(w, ",\"logpipe\":{\"file_id\":");
    w = put_str(w, h[H_FILE_ID].p, h[H_FILE_ID].n);
    PUT_LIT(w, ",\"type\":\"access\"");
    if (doc.nflags) {
        PUT_LIT(w, ",\"flags\":[");
        for (int i = 0; i < doc.nflags; i++) {
            if (i)
                *w++ = ',';
            w = put_str(w, doc.flags[i].p, doc.flags[i].n);
        }
        *w++ = ']';
    }
    PUT_LIT(w, "},\"log\":{");
    if (h[H_PATH].n) {
        PUT_LIT(w, "\"file\":{\"path\":");
        w = put_str(w, h[H_PATH].p, h[H_PATH].n);
        PUT_LIT(w, "},");
    }
    PUT_LIT(w, "\"offset\":");
    w = put_int(w, offset);
    if (doc.slot[S_LEVEL].set) {
        PUT_LIT(w, ",\"level\":");
        w = put_slot(w, &doc.slot[S_LEVEL]);
    }
    *w++ = '}';

    const Slot *ns = &doc.slot[S_NAMESPACE], *pod = &doc.slot[S_POD];
    if (h[H_NAMESPACE].n || ns->set || h[H_POD].n || pod->set || h[H_POD_UID].n || h[H_NODE].n ||
        h[H_CONTAINER].n) {
        int first = 1;
        PUT_LIT(w, ",\"kubernetes\":{");
        if (h[H_NAMESPACE].n) {
            MEMBER(w, first, "\"namespace\":");
            w = put_str(w, h[H_NAMESPACE].p, h[H_NAMESPACE].n);
        } else if (ns->set) {
            MEMBER(w, first, "\"namespace\":");
            w = put_slot(w, ns);
        }
        if (h[H_POD].n || pod->set || h[H_POD_UID].n) {
            int f2 = 1;
            MEMBER(w, first, "\"pod\":{");
            if (h[H_POD].n) {
                MEMBER(w, f2, "\"name\":");
                w = put_str(w, h[H_POD].p, h[H_POD].n);
            } else if (pod->set) {
                MEMBER(w, f2, "\"name\":");
                w = put_slot(w, pod);
            }
            if (h[H_POD_UID].n) {
                MEMBER(w, f2, "\"uid\":");
                w = put_str(w, h[H_POD_UID].p, h[H_POD_UID].n);
            }
            *w++ = '}';
        }
        if (h[H_NODE].n) {
            MEMBER(w, first, "\"node\":{\"name\":");
            w = put_str(w, h[H_NODE].p, h[H_NODE].n);
            *w++ = '}';
        }
        if (h[H_CONTAINER].n) {
            MEMBER(w, first, "\"container\":{\"name\":");
            w = put_str(w, h[H_CONTAINER].p, h[H_CONTAINER].n);
            *w++ = '}';
        }
        *w++ = '}';
    }
    if (h[H_COMPONENT].n) {
        PUT_LIT(w, ",\"service\":{\"name\":");
        w = put_str(w, h[H_COMPONENT].p, h[H_COMPONENT].n);
        *w++ = '}';
    } else if (doc.slot[S_SERVICE].set) {
        PUT_LIT(w, ",\"service\":{\"name\":");
        w = put_slot(w, &doc.slot[S_SERVICE]);
        *w++ = '}';
    }
    PUT_LIT(w, ",\"event\":{\"created\":");
    w = put_plain(w, e->created, e->created_n);
    if (doc.slot[S_DURATION].set) {
        PUT_LIT(w, ",\"duration\":");
        w = put_slot(w, &doc.slot[S_DURATION]);
    }
    PUT_LIT(w, ",\"ingested\":");
    w = put_str(w, (const unsigned char *)ing, ing_n);
    PUT_LIT(w, "},\"@timestamp\":\"");
    int64_t day;
    if (doc.has_time) {
        memcpy(w, doc.ts, (size_t)doc.ts_n);
        w += doc.ts_n;
        day = doc.ts_day;
    } else {
        memcpy(w, e->created, (size_t)e->created_n);
        w += e->created_n;
        day = e->created_day;
    }
    *w++ = '"';

    const Slot *sl = doc.slot;
    if (sl[S_METHOD].set || sl[S_STATUS].set || sl[S_BYTES].set) {
        int first = 1;
        PUT_LIT(w, ",\"http\":{");
        if (sl[S_METHOD].set) {
            MEMBER(w, first, "\"request\":{\"method\":");
            w = put_slot(w, &sl[S_METHOD]);
            *w++ = '}';
        }
        if (sl[S_STATUS].set || sl[S_BYTES].set) {
            int f2 = 1;
            MEMBER(w, first, "\"response\":{");
            SLOT_MEMBER(w, f2, "\"status_code\":", sl[S_STATUS]);
            if (sl[S_BYTES].set) {
                MEMBER(w, f2, "\"body\":{\"bytes\":");
                w = put_slot(w, &sl[S_BYTES]);
                *w++ = '}';
            }
            *w++ = '}';
        }
        *w++ = '}';
    }
    if (sl[S_URL_PATH].set || sl[S_URL_QUERY].set || sl[S_URL_DOMAIN].set) {
        int first = 1;
        PUT_LIT(w, ",\"url\":{");
        SLOT_MEMBER(w, first, "\"path\":", sl[S_URL_PATH]);
        SLOT_MEMBER(w, first, "\"query\":", sl[S_URL_QUERY]);
        SLOT_MEMBER(w, first, "\"domain\":", sl[S_URL_DOMAIN]);
        *w++ = '}';
    }
    SLOT_OBJECT(w, ",\"client\":{\"ip\":", sl[S_CLIENT_IP]);
    SLOT_OBJECT(w, ",\"user_agent\":{\"original\":", sl[S_USER_AGENT]);
    SLOT_OBJECT(w, ",\"trace\":{\"id\":", sl[S_TRACE_ID]);
    SLOT_OBJECT(w, ",\"span\":{\"id\":", sl[S_SPAN_ID]);
    if (plan->nextra || doc.nkeep) {
        char *mark = w;
        Py_ssize_t kept = 0;
        PUT_LIT(w, ",\"extra\":{");
        for (int j = 0; j < plan->nextra + doc.nkeep; j++) {
            int pos = j < plan->nextra ? plan->extra_pos[j] : doc.keep[j - plan->nextra];
            const Val *v = &vals[pos];
            if (v->type == V_NULL)
                continue;
            if (kept == e->max_keys)
                return decline(); /* more than max_keys: truncated by the Python path */
            if (kept)
                *w++ = ',';
            memcpy(w, plan->name[pos], (size_t)plan->name_n[pos]);
            w += plan->name_n[pos];
            *w++ = ':';
            if (put_extra_value(e, &w, v) < 0)
                return decline();
            kept++;
        }
        if (kept)
            *w++ = '}';
        else
            w = mark;
    }
    *w++ = '}';
    *w++ = '\n';

    /* The action line, in the place kept for it. */
    char dayt[10];
    put_day(dayt, day);
    char *hd = e->out.p;
    memcpy(hd, e->head, (size_t)e->head_n);
    memcpy(hd + e->day_off, dayt, 10);
    B2 b2;
    uint8_t dig[16];
    char num[24];
    char *ne = put_int(num, offset);
    b2_init16(&b2);
    b2_update(&b2, h[H_FILE_ID].p, (size_t)h[H_FILE_ID].n);
    b2_update(&b2, "@", 1);
    b2_update(&b2, num, (size_t)(ne - num));
    b2_final16(&b2, dig);
    PyObject *id = PyUnicode_New(32, 127);
    if (id == NULL)
        return NULL;
    char *idp = (char *)PyUnicode_1BYTE_DATA(id);
    for (int i = 0; i < 16; i++) {
        idp[2 * i] = HEX[dig[i] >> 4];
        idp[2 * i + 1] = HEX[dig[i] & 15];
    }
    memcpy(hd + e->id_off, idp, 32);

    PyObject *item = PyBytes_FromStringAndSize(e->out.p, w - e->out.p);
    PyObject *index = item ? index_name(e, dayt) : NULL;
    PyObject *res = index ? PyTuple_New(3) : NULL;
    if (res == NULL) {
        Py_XDECREF(item);
        Py_XDECREF(index);
        Py_DECREF(id);
        return NULL;
    }
    PyTuple_SET_ITEM(res, 0, item);
    PyTuple_SET_ITEM(res, 1, index);
    PyTuple_SET_ITEM(res, 2, id);
    return res;
}

static PyObject *Encoder_encode(Encoder *e, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *res = encode_impl(e, args, nargs);
    if (!e->busy) {
        buf_trim(&e->out);
        buf_trim(&e->scratch);
        buf_trim(&e->layout);
    }
    return res;
}

/* ---------------------------------------------------------------- type boilerplate */

static int Encoder_traverse(Encoder *e, visitproc visit, void *arg) {
    Py_VISIT(e->plan_fn);
    Py_VISIT(e->cache);
    Py_VISIT(e->last_obj);
    Py_VISIT(e->last_index);
    return 0;
}

static int Encoder_clear(Encoder *e) {
    e->have_last = 0;
    e->last_plan = NULL;
    Py_CLEAR(e->plan_fn);
    Py_CLEAR(e->cache);
    Py_CLEAR(e->last_obj);
    Py_CLEAR(e->last_index);
    return 0;
}

static void Encoder_dealloc(Encoder *e) {
    PyObject_GC_UnTrack(e);
    Encoder_clear(e);
    PyMem_Free(e->last_key);
    PyMem_Free(e->head);
    PyMem_Free(e->prefix);
    PyMem_Free(e->out.p);
    PyMem_Free(e->scratch.p);
    PyMem_Free(e->layout.p);
    Py_TYPE(e)->tp_free((PyObject *)e);
}

static int opt_double(PyObject *o, int *has, double *out) {
    if (o == Py_None) {
        *has = 0;
        return 0;
    }
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    *has = 1;
    *out = d;
    return 0;
}

static PyObject *Encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"plan_fn", "prefix", "max_future_s", "max_past_s", "max_keys", "max_value_chars", NULL};
    PyObject *plan_fn, *prefix, *fut, *past;
    Py_ssize_t max_keys, max_value_chars;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OUOOnn:Encoder", kwlist, &plan_fn, &prefix, &fut, &past, &max_keys,
                                     &max_value_chars))
        return NULL;
    if (!PyCallable_Check(plan_fn)) {
        PyErr_SetString(PyExc_TypeError, "plan_fn must be callable");
        return NULL;
    }
    if (max_keys < 0 || max_value_chars < 0) {
        PyErr_SetString(PyExc_ValueError, "max_keys and max_value_chars must be >= 0");
        return NULL;
    }
    Py_ssize_t pn;
    const char *pu = PyUnicode_AsUTF8AndSize(prefix, &pn);
    if (pu == NULL)
        return NULL;
    Encoder *e = (Encoder *)type->tp_alloc(type, 0);
    if (e == NULL)
        return NULL;
    e->last_read_ms = -1;
    e->max_keys = max_keys;
    e->max_value_chars = max_value_chars;
    if (opt_double(fut, &e->has_future, &e->max_future) < 0 || opt_double(past, &e->has_past, &e->max_past) < 0)
        goto fail;
    e->plan_fn = Py_NewRef(plan_fn);
    e->cache = PyDict_New();
    e->prefix = PyMem_Malloc((size_t)pn + 1);
    e->head = PyMem_Malloc((size_t)(6 * pn + 128));
    if (e->cache == NULL || e->prefix == NULL || e->head == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    memcpy(e->prefix, pu, (size_t)pn);
    e->prefix_n = pn;
    /* The action line as consumer/bulk.py encode_item writes it (orjson's escaping of the index). */
    char *w = e->head;
    PUT_LIT(w, "{\"index\":{\"_index\":");
    w = put_str(w, (const unsigned char *)pu, pn);
    w--; /* reopen the string: the index name goes on */
    PUT_LIT(w, "-access-");
    e->day_off = w - e->head;
    PUT_LIT(w, "YYYY.MM.DD\",\"_id\":\"");
    e->id_off = w - e->head;
    PUT_LIT(w, "0123456789abcdef0123456789abcdef\"}}\n");
    e->head_n = w - e->head;
    return (PyObject *)e;
fail:
    Py_DECREF(e);
    return NULL;
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Encoder_encode, METH_FASTCALL,
     "encode(value, headers, ingested) -> (bulk item, index name, _id) or None (use the Python path)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "parsers._access_encoder.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Encoder(plan_fn, prefix, max_future_s, max_past_s, max_keys, max_value_chars): access records "
              "-> _bulk items (see parsers/access_encoder.py).",
    .tp_new = Encoder_new,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_methods = Encoder_methods,
};

static PyObject *blake2b16_hex(PyObject *Py_UNUSED(mod), PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    B2 s;
    uint8_t dig[16];
    char hex[32];
    b2_init16(&s);
    b2_update(&s, view.buf, (size_t)view.len);
    b2_final16(&s, dig);
    PyBuffer_Release(&view);
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = HEX[dig[i] >> 4];
        hex[2 * i + 1] = HEX[dig[i] & 15];
    }
    return PyUnicode_FromStringAndSize(hex, 32);
}

static PyMethodDef module_methods[] = {
    {"blake2b16_hex", blake2b16_hex, METH_O,
     "blake2b16_hex(data) -> hashlib.blake2b(data, digest_size=16).hexdigest() (the C implementation, for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "parsers._access_encoder",
    "The C fast path of parsers.access_encoder (access records -> _bulk items).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__access_encoder(void) {
    init_tables();
    if (PyType_Ready(&EncoderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
