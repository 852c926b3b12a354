/* xl.cfg parser: a hand-written lexer and recursive-descent parser for the
 * syntax of xl.cfg(5).  See xlcfg.h for the language and the API. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xlcfg.h"

/* How deep lists may go: 1 allows lists of strings and numbers only.  Xen
 * also allows lists of lists (vnuma); raising this is all that takes. */
#define XLCFG_MAX_DEPTH 1

#define SOURCE_COMMAND_LINE "command line"
#define SOURCE_PROGRAM      "(set by program)"

struct setting {
    char *key;
    struct xlcfg_value value;   /* value.file/line: where the key was set */
    size_t str_len;             /* STRING: length and allocated size of */
    size_t str_cap;             /* value.str, so that += grows cheaply */
    bool used;
};

struct source {
    struct source *next;
    char name[];
};

struct xlcfg {
    struct setting *settings;   /* in the order keys first appeared */
    size_t n_settings, cap_settings;
    size_t *slots;              /* hash table of index + 1; 0 is empty */
    size_t n_slots;             /* a power of two, or 0 */
    struct source *sources;     /* file names the values point at */
};

/* ---- characters ---- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_ident_start(int c) { return is_alpha(c) || c == '_'; }
static bool is_ident(int c) { return is_ident_start(c) || is_digit(c); }
static bool is_space(int c) { return c == ' ' || c == '\t' || c == '\r'; }

static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool valid_key(const char *key)
{
    size_t i;

    if (!key || !is_ident_start((unsigned char)key[0]))
        return false;
    for (i = 1; key[i]; i++)
        if (!is_ident((unsigned char)key[i]))
            return false;
    return i <= XLCFG_MAX_KEY;
}

/* A number as C writes it without a sign: decimal, 0x hex or 0 octal.
 * -EINVAL if s is not one, -ERANGE if it does not fit a long long. */
static int number_value(const char *s, size_t n, long long *out)
{
    unsigned base = 10;
    unsigned long long v = 0;
    size_t i = 0, j;

    if (n == 0 || !is_digit((unsigned char)s[0]))
        return -EINVAL;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
        if (n == 2)
            return -EINVAL;
    } else if (s[0] == '0' && n > 1) {
        base = 8;
        i = 1;
    }
    for (j = i; j < n; j++) {
        int d = hex_value((unsigned char)s[j]);
        if (d < 0 || (unsigned)d >= base)
            return -EINVAL;
    }
    for (j = i; j < n; j++) {
        unsigned d = (unsigned)hex_value((unsigned char)s[j]);
        if (v > ((unsigned long long)LLONG_MAX - d) / base)
            return -ERANGE;
        v = v * base + d;
    }
    *out = (long long)v;
    return 0;
}

/* A number in a quoted string, read as Xen's xl does (strtol, base 0):
 * leading blanks and a sign are allowed, nothing may follow. */
static int quoted_number_value(const char *s, long long *out)
{
    bool negative = false;
    long long v;
    int r;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' ||
           *s == '\f' || *s == '\v')
        s++;
    if (*s == '+' || *s == '-')
        negative = *s++ == '-';
    r = number_value(s, strlen(s), &v);
    if (r < 0)
        return r;
    *out = negative ? -v : v;
    return 0;
}

/* ---- values and settings ---- */

static void value_clear(struct xlcfg_value *v)
{
    size_t i;

    free(v->str);
    for (i = 0; i < v->n_items; i++)
        value_clear(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

static bool value_equal(const struct xlcfg_value *a, const struct xlcfg_value *b)
{
    size_t i;

    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case XLCFG_STRING:
        return strcmp(a->str, b->str) == 0;
    case XLCFG_NUMBER:
        return a->num == b->num && strcmp(a->str, b->str) == 0;
    case XLCFG_LIST:
        if (a->n_items != b->n_items)
            return false;
        for (i = 0; i < a->n_items; i++)
            if (!value_equal(&a->items[i], &b->items[i]))
                return false;
        return true;
    }
    return false;
}

static uint64_t key_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */

    while (*key) {
        h ^= (unsigned char)*key++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static struct setting *find_setting(const struct xlcfg *cfg, const char *key)
{
    size_t mask, i;

    if (!cfg->n_slots)
        return NULL;
    mask = cfg->n_slots - 1;
    for (i = key_hash(key) & mask; cfg->slots[i]; i = (i + 1) & mask) {
        struct setting *s = &cfg->settings[cfg->slots[i] - 1];
        if (strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

static void slot_insert(size_t *slots, size_t n_slots, const char *key, size_t index)
{
    size_t mask = n_slots - 1, i;

    for (i = key_hash(key) & mask; slots[i]; i = (i + 1) & mask)
        ;
    slots[i] = index + 1;
}

/* Adds a new key (which must not be present) with value v, taking v. */
static int add_setting(struct xlcfg *cfg, const char *key, struct xlcfg_value *v)
{
    struct setting *s;
    size_t i;

    if (cfg->n_settings == cfg->cap_settings) {
        size_t cap = cfg->cap_settings ? cfg->cap_settings * 2 : 32;
        struct setting *n = realloc(cfg->settings, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        cfg->settings = n;
        cfg->cap_settings = cap;
    }
    if ((cfg->n_settings + 1) * 2 > cfg->n_slots) {
        size_t n_slots = cfg->n_slots ? cfg->n_slots * 2 : 64;
        size_t *slots = calloc(n_slots, sizeof(*slots));
        if (!slots)
            return -ENOMEM;
        for (i = 0; i < cfg->n_settings; i++)
            slot_insert(slots, n_slots, cfg->settings[i].key, i);
        free(cfg->slots);
        cfg->slots = slots;
        cfg->n_slots = n_slots;
    }
    s = &cfg->settings[cfg->n_settings];
    memset(s, 0, sizeof(*s));
    s->key = strdup(key);
    if (!s->key)
        return -ENOMEM;
    s->value = *v;
    memset(v, 0, sizeof(*v));
    if (s->value.kind == XLCFG_STRING) {
        s->str_len = strlen(s->value.str);
        s->str_cap = s->str_len + 1;
    }
    slot_insert(cfg->slots, cfg->n_slots, key, cfg->n_settings);
    cfg->n_settings++;
    return 0;
}

static void replace_setting(struct setting *s, struct xlcfg_value *v)
{
    value_clear(&s->value);
    s->value = *v;
    memset(v, 0, sizeof(*v));
    if (s->value.kind == XLCFG_STRING) {
        s->str_len = strlen(s->value.str);
        s->str_cap = s->str_len + 1;
    }
}

static const char *add_source(struct xlcfg *cfg, const char *name)
{
    struct source *src;
    size_t n;

    for (src = cfg->sources; src; src = src->next)
        if (strcmp(src->name, name) == 0)
            return src->name;
    n = strlen(name);
    src = malloc(sizeof(*src) + n + 1);
    if (!src)
        return NULL;
    memcpy(src->name, name, n + 1);
    src->next = cfg->sources;
    cfg->sources = src;
    return src->name;
}

static struct xlcfg *cfg_new(void)
{
    return calloc(1, sizeof(struct xlcfg));
}

void xlcfg_free(struct xlcfg *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < cfg->n_settings; i++) {
        free(cfg->settings[i].key);
        value_clear(&cfg->settings[i].value);
    }
    free(cfg->settings);
    free(cfg->slots);
    while (cfg->sources) {
        struct source *next = cfg->sources->next;
        free(cfg->sources);
        cfg->sources = next;
    }
    free(cfg);
}

/* ---- lexer ---- */

enum tok_kind {
    T_EOF, T_NEWLINE, T_SEMI, T_EQ, T_PLUSEQ, T_LBRACK, T_RBRACK, T_COMMA,
    T_IDENT, T_NUMBER, T_STRING,
};

struct token {
    enum tok_kind kind;
    unsigned line;
    const char *text;           /* IDENT, NUMBER: as written */
    size_t len;
    char *str;                  /* STRING: decoded, malloc'd */
    long long num;              /* NUMBER */
};

struct parser {
    const char *p, *end;
    unsigned line;
    const char *file;
    const struct tlog *log;
    struct xlcfg *cfg;
};

/* Reports "<file>:<line>: <what>" and returns -EINVAL. */
static int syntax_error(const struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int syntax_error(const struct parser *ps, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlog_error(ps->log, "%s:%u: %s", ps->file, line, msg);
    return -EINVAL;
}

static void tok_release(struct token *t)
{
    free(t->str);
    t->str = NULL;
}

/* A short description of a token for messages. */
static const char *tok_describe(const struct token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case T_EOF:     return "end of input";
    case T_NEWLINE: return "end of line";
    case T_SEMI:    return "';'";
    case T_EQ:      return "'='";
    case T_PLUSEQ:  return "'+='";
    case T_LBRACK:  return "'['";
    case T_RBRACK:  return "']'";
    case T_COMMA:   return "','";
    case T_STRING:  return "a string";
    case T_IDENT:
        snprintf(buf, size, "'%.*s%s'", t->len > 40 ? 40 : (int)t->len, t->text,
                 t->len > 40 ? "..." : "");
        return buf;
    case T_NUMBER:
        snprintf(buf, size, "number %.*s", (int)t->len, t->text);
        return buf;
    }
    return "?";
}

/* Skips blanks, comments and backslash-newline continuations. */
static void skip_blanks(struct parser *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;

        if (is_space(c)) {
            ps->p++;
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else if (c == '\\') {
            /* A continuation: backslash, maybe blanks, then end of line. */
            const char *q = ps->p + 1;
            while (q < ps->end && is_space((unsigned char)*q))
                q++;
            if (q < ps->end && *q != '\n')
                return;                 /* a stray backslash */
            if (q < ps->end) {
                q++;
                ps->line++;
            }
            ps->p = q;
        } else {
            return;
        }
    }
}

struct strbuf {
    char *s;
    size_t len, cap;
};

static int strbuf_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *ns;
        while (cap < b->len + n + 1)
            cap *= 2;
        ns = realloc(b->s, cap);
        if (!ns)
            return -ENOMEM;
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static int strbuf_addc(struct strbuf *b, char c)
{
    return strbuf_add(b, &c, 1);
}

/* A quoted string; ps->p is at the opening quote. */
static int lex_string(struct parser *ps, struct token *t)
{
    const char quote = *ps->p++;
    const unsigned start = ps->line;
    struct strbuf b = { 0 };
    int r = 0;

    if (strbuf_add(&b, "", 0) < 0)
        return -ENOMEM;
    for (;;) {
        unsigned char c, e;
        unsigned v;

        if (ps->p >= ps->end || *ps->p == '\n') {
            r = syntax_error(ps, start, "unterminated string");
            goto fail;
        }
        c = (unsigned char)*ps->p++;
        if (c == (unsigned char)quote)
            break;
        if (c != '\\') {
            if (strbuf_addc(&b, (char)c) < 0)
                goto nomem;
            continue;
        }
        if (ps->p >= ps->end) {
            r = syntax_error(ps, start, "unterminated string");
            goto fail;
        }
        e = (unsigned char)*ps->p++;
        switch (e) {
        case '\n':                      /* continuation inside the string */
            ps->line++;
            continue;
        case '\r':
            if (ps->p < ps->end && *ps->p == '\n') {
                ps->p++;
                ps->line++;
                continue;
            }
            r = syntax_error(ps, ps->line, "invalid escape in string");
            goto fail;
        case '"': case '\'': case '\\': v = e; break;
        case 'a': v = '\a'; break;
        case 'b': v = '\b'; break;
        case 'f': v = '\f'; break;
        case 'n': v = '\n'; break;
        case 'r': v = '\r'; break;
        case 't': v = '\t'; break;
        case 'v': v = '\v'; break;
        case 'x':
            if (ps->end - ps->p < 2 || hex_value((unsigned char)ps->p[0]) < 0 ||
                hex_value((unsigned char)ps->p[1]) < 0) {
                r = syntax_error(ps, ps->line, "\\x in a string needs two hex digits");
                goto fail;
            }
            v = (unsigned)(hex_value((unsigned char)ps->p[0]) * 16 +
                           hex_value((unsigned char)ps->p[1]));
            ps->p += 2;
            break;
        case '0': case '1': case '2': case '3':
        case '4': case '5': case '6': case '7': {
            int k;
            v = e - '0';
            for (k = 0; k < 2 && ps->p < ps->end && *ps->p >= '0' && *ps->p <= '7'; k++)
                v = v * 8 + (unsigned)(*ps->p++ - '0');
            if (v > 255) {
                r = syntax_error(ps, ps->line, "octal escape in a string is out of range");
                goto fail;
            }
            break;
        }
        default:
            if (e > ' ' && e < 0x7f)
                r = syntax_error(ps, ps->line, "invalid escape '\\%c' in string", e);
            else
                r = syntax_error(ps, ps->line, "invalid escape in string");
            goto fail;
        }
        if (v == 0) {
            r = syntax_error(ps, ps->line, "escape in string gives a NUL byte");
            goto fail;
        }
        if (strbuf_addc(&b, (char)v) < 0)
            goto nomem;
    }
    t->kind = T_STRING;
    t->str = b.s;
    return 0;

nomem:
    r = -ENOMEM;
    tlog_error(ps->log, "%s: out of memory", ps->file);
fail:
    free(b.s);
    return r;
}

static int lex(struct parser *ps, struct token *t)
{
    unsigned char c;
    const char *start;

    memset(t, 0, sizeof(*t));
    skip_blanks(ps);
    t->line = ps->line;
    if (ps->p >= ps->end) {
        /* The end of a text that ends with a newline is on its last line. */
        if (ps->line > 1 && ps->end[-1] == '\n')
            t->line = ps->line - 1;
        t->kind = T_EOF;
        return 0;
    }
    c = (unsigned char)*ps->p;
    switch (c) {
    case '\n': ps->p++; ps->line++; t->kind = T_NEWLINE; return 0;
    case ';':  ps->p++; t->kind = T_SEMI; return 0;
    case '=':  ps->p++; t->kind = T_EQ; return 0;
    case '[':  ps->p++; t->kind = T_LBRACK; return 0;
    case ']':  ps->p++; t->kind = T_RBRACK; return 0;
    case ',':  ps->p++; t->kind = T_COMMA; return 0;
    case '"': case '\'':
        return lex_string(ps, t);
    case '+':
        if (ps->end - ps->p >= 2 && ps->p[1] == '=') {
            ps->p += 2;
            t->kind = T_PLUSEQ;
            return 0;
        }
        break;
    case '-':
        if (ps->end - ps->p >= 2 && is_digit((unsigned char)ps->p[1]))
            return syntax_error(ps, t->line, "numbers have no sign (write a "
                                "negative number as a quoted string)");
        break;
    }
    start = ps->p;
    if (is_digit(c)) {
        int r;
        while (ps->p < ps->end && (is_ident((unsigned char)*ps->p) || *ps->p == '.'))
            ps->p++;
        t->kind = T_NUMBER;
        t->text = start;
        t->len = (size_t)(ps->p - start);
        r = number_value(start, t->len, &t->num);
        if (r == -ERANGE)
            return syntax_error(ps, t->line, "number out of range: %.*s",
                                t->len > 40 ? 40 : (int)t->len, start);
        if (r < 0)
            return syntax_error(ps, t->line, "invalid number '%.*s'",
                                t->len > 40 ? 40 : (int)t->len, start);
        return 0;
    }
    if (is_ident_start(c)) {
        while (ps->p < ps->end && is_ident((unsigned char)*ps->p))
            ps->p++;
        t->kind = T_IDENT;
        t->text = start;
        t->len = (size_t)(ps->p - start);
        return 0;
    }
    if (c > ' ' && c < 0x7f)
        return syntax_error(ps, t->line, "unexpected character '%c'", c);
    return syntax_error(ps, t->line, "unexpected byte 0x%02x", c);
}

/* The next token that is not a newline (lists may span lines). */
static int lex_skip_newlines(struct parser *ps, struct token *t)
{
    int r;

    do {
        r = lex(ps, t);
    } while (r == 0 && t->kind == T_NEWLINE);
    return r;
}

/* ---- parser ---- */

#define NOT_A_VALUE 1

static int parse_value(struct parser *ps, struct token *t, unsigned depth,
                       struct xlcfg_value *out);

static int parse_list(struct parser *ps, unsigned open_line, unsigned depth,
                      struct xlcfg_value *out)
{
    struct xlcfg_value list = { .kind = XLCFG_LIST, .file = ps->file, .line = open_line };
    size_t cap = 0;
    struct token t;
    char desc[64];
    int r;

    for (;;) {
        r = lex_skip_newlines(ps, &t);
        if (r < 0)
            goto fail;
        if (t.kind == T_RBRACK)
            break;                      /* empty list or trailing comma */
        if (t.kind == T_EOF) {
            r = syntax_error(ps, t.line, "unterminated list opened at line %u", open_line);
            goto fail;
        }
        if (list.n_items == XLCFG_MAX_LIST) {
            r = syntax_error(ps, t.line, "list opened at line %u has more than %d items",
                             open_line, XLCFG_MAX_LIST);
            tok_release(&t);
            goto fail;
        }
        if (list.n_items == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            struct xlcfg_value *n = realloc(list.items, ncap * sizeof(*n));
            if (!n) {
                tok_release(&t);
                r = -ENOMEM;
                tlog_error(ps->log, "%s: out of memory", ps->file);
                goto fail;
            }
            list.items = n;
            cap = ncap;
        }
        r = parse_value(ps, &t, depth + 1, &list.items[list.n_items]);
        if (r == NOT_A_VALUE)
            r = syntax_error(ps, t.line, "expected a value or ']' in the list opened "
                             "at line %u, found %s", open_line,
                             tok_describe(&t, desc, sizeof(desc)));
        if (r < 0)
            goto fail;
        list.n_items++;

        r = lex_skip_newlines(ps, &t);
        if (r < 0)
            goto fail;
        if (t.kind == T_COMMA)
            continue;
        if (t.kind == T_RBRACK)
            break;
        if (t.kind == T_EOF)
            r = syntax_error(ps, t.line, "unterminated list opened at line %u", open_line);
        else
            r = syntax_error(ps, t.line, "expected ',' or ']' in the list opened at "
                             "line %u, found %s%s", open_line,
                             tok_describe(&t, desc, sizeof(desc)),
                             t.kind == T_IDENT ? " (is a ']' missing?)" : "");
        tok_release(&t);
        goto fail;
    }
    *out = list;
    return 0;

fail:
    value_clear(&list);
    return r;
}

/* Makes a value of token t (and, for '[', the tokens after it), taking
 * t's string.  NOT_A_VALUE (t untouched) if t cannot start a value. */
static int parse_value(struct parser *ps, struct token *t, unsigned depth,
                       struct xlcfg_value *out)
{
    memset(out, 0, sizeof(*out));
    out->file = ps->file;
    out->line = t->line;
    switch (t->kind) {
    case T_STRING:
        out->kind = XLCFG_STRING;
        out->str = t->str;
        t->str = NULL;
        return 0;
    case T_NUMBER:
        out->kind = XLCFG_NUMBER;
        out->num = t->num;
        out->str = strndup(t->text, t->len);
        if (!out->str) {
            tlog_error(ps->log, "%s: out of memory", ps->file);
            return -ENOMEM;
        }
        return 0;
    case T_LBRACK:
        if (depth >= XLCFG_MAX_DEPTH)
            return syntax_error(ps, t->line, "nested lists are not allowed");
        return parse_list(ps, t->line, depth, out);
    case T_IDENT:
        return syntax_error(ps, t->line, "unquoted string '%.*s%s' (strings must be quoted)",
                            t->len > 40 ? 40 : (int)t->len, t->text,
                            t->len > 40 ? "..." : "");
    default:
        return NOT_A_VALUE;
    }
}

/* Stores key = v or key += v, taking v. */
static int store(struct parser *ps, const char *key, bool append, struct xlcfg_value *v)
{
    struct xlcfg *cfg = ps->cfg;
    struct setting *s = find_setting(cfg, key);
    int r;

    if (append && v->kind == XLCFG_NUMBER)
        return syntax_error(ps, v->line, "'+=' cannot be used with a number ('%s')", key);
    if (append && s) {
        struct xlcfg_value *old = &s->value;

        if (old->kind == XLCFG_NUMBER)
            return syntax_error(ps, v->line, "'+=' cannot add to '%s', which is a number",
                                key);
        if (old->kind != v->kind)
            return syntax_error(ps, v->line, "'+=' cannot add a %s to '%s', which is a %s",
                                v->kind == XLCFG_LIST ? "list" : "string", key,
                                old->kind == XLCFG_LIST ? "list" : "string");
        if (v->kind == XLCFG_STRING) {
            size_t n = strlen(v->str);
            if (s->str_len + n + 1 > s->str_cap) {
                size_t cap = s->str_cap ? s->str_cap : 16;
                char *ns;
                while (cap < s->str_len + n + 1)
                    cap *= 2;
                ns = realloc(old->str, cap);
                if (!ns)
                    goto nomem;
                old->str = ns;
                s->str_cap = cap;
            }
            memcpy(old->str + s->str_len, v->str, n + 1);
            s->str_len += n;
        } else {
            struct xlcfg_value *items;
            if (old->n_items + v->n_items > XLCFG_MAX_LIST)
                return syntax_error(ps, v->line, "'+=' would give '%s' more than %d items",
                                    key, XLCFG_MAX_LIST);
            if (v->n_items) {
                items = realloc(old->items, (old->n_items + v->n_items) * sizeof(*items));
                if (!items)
                    goto nomem;
                memcpy(items + old->n_items, v->items, v->n_items * sizeof(*items));
                old->items = items;
                old->n_items += v->n_items;
                free(v->items);
                v->items = NULL;
                v->n_items = 0;
            }
        }
        old->file = v->file;
        old->line = v->line;
        value_clear(v);
        return 0;
    }
    if (s) {
        replace_setting(s, v);
        return 0;
    }
    r = add_setting(cfg, key, v);
    if (r < 0)
        goto nomem;
    return 0;

nomem:
    tlog_error(ps->log, "%s: out of memory", ps->file);
    return -ENOMEM;
}

static int parse_setting(struct parser *ps, const struct token *key_tok)
{
    char key[XLCFG_MAX_KEY + 1];
    struct xlcfg_value v;
    struct token t;
    char desc[64];
    bool append;
    int r;

    if (key_tok->len > XLCFG_MAX_KEY)
        return syntax_error(ps, key_tok->line, "key '%.40s...' is too long (more than %d "
                            "characters)", key_tok->text, XLCFG_MAX_KEY);
    memcpy(key, key_tok->text, key_tok->len);
    key[key_tok->len] = '\0';

    r = lex(ps, &t);
    if (r < 0)
        return r;
    if (t.kind != T_EQ && t.kind != T_PLUSEQ) {
        tok_release(&t);
        return syntax_error(ps, t.line, "expected '=' after '%s'", key);
    }
    append = t.kind == T_PLUSEQ;

    r = lex(ps, &t);
    if (r < 0)
        return r;
    r = parse_value(ps, &t, 0, &v);
    if (r == NOT_A_VALUE) {
        if (t.kind == T_NEWLINE || t.kind == T_SEMI || t.kind == T_EOF)
            return syntax_error(ps, t.line, "missing value for '%s'", key);
        return syntax_error(ps, t.line, "expected a value for '%s', found %s", key,
                            tok_describe(&t, desc, sizeof(desc)));
    }
    if (r < 0)
        return r;
    v.line = key_tok->line;
    r = store(ps, key, append, &v);
    value_clear(&v);
    if (r < 0)
        return r;

    r = lex(ps, &t);
    if (r < 0)
        return r;
    if (t.kind == T_NEWLINE || t.kind == T_SEMI || t.kind == T_EOF)
        return 0;
    r = syntax_error(ps, t.line, "expected a new line or ';' after the value of '%s', "
                     "found %s", key, tok_describe(&t, desc, sizeof(desc)));
    tok_release(&t);
    return r;
}

static int parse_into(struct xlcfg *cfg, const char *text, size_t len,
                      const char *source, const struct tlog *log)
{
    struct parser ps = { .p = text, .end = text + len, .line = 1, .log = log, .cfg = cfg };
    const char *nul;
    struct token t;
    char desc[64];
    int r;

    ps.file = add_source(cfg, source);
    if (!ps.file) {
        tlog_error(log, "%s: out of memory", source);
        return -ENOMEM;
    }
    if (len > XLCFG_MAX_INPUT) {
        tlog_error(log, "%s: too large (more than %d bytes)", source, XLCFG_MAX_INPUT);
        return -EFBIG;
    }
    nul = memchr(text, '\0', len);
    if (nul) {
        const char *q;
        unsigned line = 1;
        for (q = text; q < nul; q++)
            line += *q == '\n';
        return syntax_error(&ps, line, "NUL byte in the text");
    }

    for (;;) {
        r = lex(&ps, &t);
        if (r < 0)
            return r;
        switch (t.kind) {
        case T_EOF:
            return 0;
        case T_NEWLINE:
        case T_SEMI:
            continue;
        case T_IDENT:
            r = parse_setting(&ps, &t);
            if (r < 0)
                return r;
            continue;
        default:
            r = syntax_error(&ps, t.line, "expected a key, found %s",
                             tok_describe(&t, desc, sizeof(desc)));
            tok_release(&t);
            return r;
        }
    }
}

/* ---- parsing entry points ---- */

int xlcfg_parse(const char *text, size_t len, const char *filename,
                const struct tlog *log, struct xlcfg **out)
{
    struct xlcfg *cfg;
    int r;

    *out = NULL;
    if (!text && len)
        return -EINVAL;
    cfg = cfg_new();
    if (!cfg) {
        tlog_error(log, "%s: out of memory", filename ? filename : "config");
        return -ENOMEM;
    }
    r = parse_into(cfg, text ? text : "", len, filename ? filename : "config", log);
    if (r < 0) {
        xlcfg_free(cfg);
        return r;
    }
    *out = cfg;
    return 0;
}

int xlcfg_parse_file(const char *path, const struct tlog *log, struct xlcfg **out)
{
    char *buf = NULL, eb[128];
    size_t len = 0, cap = 0;
    struct stat st;
    int fd, r;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        tlog_error(log, "%s: cannot open: %s", path, strerror_r(-r, eb, sizeof(eb)));
        return r;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        tlog_error(log, "%s: cannot stat: %s", path, strerror_r(-r, eb, sizeof(eb)));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        r = -EISDIR;
        tlog_error(log, "%s: is a directory", path);
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 64 * 1024;
            char *nb;
            if (cap > XLCFG_MAX_INPUT) {
                r = -EFBIG;
                tlog_error(log, "%s: too large (more than %d bytes)", path, XLCFG_MAX_INPUT);
                goto out;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                r = -ENOMEM;
                tlog_error(log, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            tlog_error(log, "%s: cannot read: %s", path, strerror_r(-r, eb, sizeof(eb)));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    r = xlcfg_parse(buf, len, path, log, out);
out:
    free(buf);
    close(fd);
    return r;
}

int xlcfg_apply_override(struct xlcfg *cfg, const char *text, const struct tlog *log)
{
    if (!cfg || !text)
        return -EINVAL;
    return parse_into(cfg, text, strlen(text), SOURCE_COMMAND_LINE, log);
}

/* ---- look-ups ---- */

static struct setting *use_setting(struct xlcfg *cfg, const char *key)
{
    struct setting *s = find_setting(cfg, key);

    if (s)
        s->used = true;
    return s;
}

int xlcfg_get_string(struct xlcfg *cfg, const char *key, const char **out,
                     const struct tlog *log)
{
    struct setting *s = use_setting(cfg, key);

    if (!s)
        return -ENOENT;
    if (s->value.kind == XLCFG_LIST) {
        tlog_error(log, "%s:%u: '%s' is a list but should be a single value",
                   s->value.file, s->value.line, key);
        return -EINVAL;
    }
    *out = s->value.str;
    return 0;
}

int xlcfg_get_number(struct xlcfg *cfg, const char *key, long long min,
                     long long max, long long *out, const struct tlog *log)
{
    struct setting *s = use_setting(cfg, key);
    long long v;
    int r;

    if (!s)
        return -ENOENT;
    switch (s->value.kind) {
    case XLCFG_NUMBER:
        v = s->value.num;
        break;
    case XLCFG_STRING:
        r = quoted_number_value(s->value.str, &v);
        if (r == -ERANGE) {
            tlog_error(log, "%s:%u: '%s': number out of range", s->value.file,
                       s->value.line, key);
            return -ERANGE;
        }
        if (r < 0) {
            tlog_error(log, "%s:%u: '%s' should be a number, not \"%.40s%s\"",
                       s->value.file, s->value.line, key, s->value.str,
                       strlen(s->value.str) > 40 ? "..." : "");
            return -EINVAL;
        }
        break;
    default:
        tlog_error(log, "%s:%u: '%s' is a list but should be a number",
                   s->value.file, s->value.line, key);
        return -EINVAL;
    }
    if (v < min || v > max) {
        tlog_error(log, "%s:%u: '%s' = %lld is out of range (%lld to %lld)",
                   s->value.file, s->value.line, key, v, min, max);
        return -ERANGE;
    }
    *out = v;
    return 0;
}

int xlcfg_get_bool(struct xlcfg *cfg, const char *key, bool *out, const struct tlog *log)
{
    long long v;
    int r = xlcfg_get_number(cfg, key, LLONG_MIN, LLONG_MAX, &v, log);

    if (r == 0)
        *out = v != 0;
    return r;
}

int xlcfg_get_list(struct xlcfg *cfg, const char *key,
                   const struct xlcfg_value **out, const struct tlog *log)
{
    struct setting *s = use_setting(cfg, key);

    if (!s)
        return -ENOENT;
    if (s->value.kind != XLCFG_LIST) {
        tlog_error(log, "%s:%u: '%s' is a single value but should be a list",
                   s->value.file, s->value.line, key);
        return -EINVAL;
    }
    *out = &s->value;
    return 0;
}

int xlcfg_get_string_list(struct xlcfg *cfg, const char *key, const char ***out,
                          size_t *n, const struct tlog *log)
{
    const struct xlcfg_value *list;
    const char **strs;
    size_t i;
    int r;

    r = xlcfg_get_list(cfg, key, &list, log);
    if (r < 0)
        return r;
    for (i = 0; i < list->n_items; i++) {
        if (list->items[i].kind == XLCFG_LIST) {
            tlog_error(log, "%s:%u: item %zu of '%s' is a list but should be a string",
                       list->items[i].file, list->items[i].line, i + 1, key);
            return -EINVAL;
        }
    }
    strs = calloc(list->n_items + 1, sizeof(*strs));
    if (!strs) {
        tlog_error(log, "%s: out of memory", key);
        return -ENOMEM;
    }
    for (i = 0; i < list->n_items; i++)
        strs[i] = list->items[i].str;
    *out = strs;
    if (n)
        *n = list->n_items;
    return 0;
}

/* ---- settings from the program ---- */

static int set_value(struct xlcfg *cfg, const char *key, struct xlcfg_value *v)
{
    struct setting *s;
    int r;

    v->file = SOURCE_PROGRAM;
    s = find_setting(cfg, key);
    if (s) {
        replace_setting(s, v);
    } else {
        r = add_setting(cfg, key, v);
        if (r < 0) {
            value_clear(v);
            return r;
        }
        s = &cfg->settings[cfg->n_settings - 1];
    }
    s->used = true;
    return 0;
}

int xlcfg_set_string(struct xlcfg *cfg, const char *key, const char *value)
{
    struct xlcfg_value v = { .kind = XLCFG_STRING };

    if (!valid_key(key) || !value)
        return -EINVAL;
    v.str = strdup(value);
    if (!v.str)
        return -ENOMEM;
    return set_value(cfg, key, &v);
}

int xlcfg_set_number(struct xlcfg *cfg, const char *key, long long value)
{
    struct xlcfg_value v = { .kind = XLCFG_NUMBER, .num = value };

    if (!valid_key(key))
        return -EINVAL;
    if (value < 0)
        return -ERANGE;                 /* xl.cfg numbers have no sign */
    if (asprintf(&v.str, "%lld", value) < 0)
        return -ENOMEM;
    return set_value(cfg, key, &v);
}

void xlcfg_for_each_unused(struct xlcfg *cfg,
                           void (*fn)(void *opaque, const char *key,
                                      const char *file, unsigned line),
                           void *opaque)
{
    size_t i;

    for (i = 0; i < cfg->n_settings; i++) {
        const struct setting *s = &cfg->settings[i];
        if (!s->used)
            fn(opaque, s->key, s->value.file, s->value.line);
    }
}

size_t xlcfg_count(const struct xlcfg *cfg)
{
    return cfg->n_settings;
}

bool xlcfg_equal(const struct xlcfg *a, const struct xlcfg *b)
{
    size_t i;

    if (a->n_settings != b->n_settings)
        return false;
    for (i = 0; i < a->n_settings; i++) {
        if (strcmp(a->settings[i].key, b->settings[i].key) != 0 ||
            !value_equal(&a->settings[i].value, &b->settings[i].value))
            return false;
    }
    return true;
}

/* ---- formatting ---- */

#define FORMAT_WIDTH 80

static void format_string(struct strbuf *b, const char *s, int *err)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;

    if (*err)
        return;
    *err = strbuf_addc(b, '"');
    for (; *s && !*err; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[4] = { '\\', 0, 0, 0 };
        size_t n = 2;

        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\t': esc[1] = 't'; break;
        case '\r': esc[1] = 'r'; break;
        case '\a': esc[1] = 'a'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\v': esc[1] = 'v'; break;
        default:
            if (c >= 0x20 && c != 0x7f)
                continue;
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            n = 4;
        }
        *err = strbuf_add(b, run, (size_t)(s - run));
        if (!*err)
            *err = strbuf_add(b, esc, n);
        run = s + 1;
    }
    if (!*err)
        *err = strbuf_add(b, run, (size_t)(s - run));
    if (!*err)
        *err = strbuf_addc(b, '"');
}

static void format_value(struct strbuf *b, const struct xlcfg_value *v, size_t line_start,
                         int *err)
{
    size_t i, mark;

    if (*err)
        return;
    switch (v->kind) {
    case XLCFG_STRING:
        format_string(b, v->str, err);
        return;
    case XLCFG_NUMBER:
        *err = strbuf_add(b, v->str, strlen(v->str));
        return;
    case XLCFG_LIST:
        break;
    }
    if (v->n_items == 0) {
        *err = strbuf_add(b, "[ ]", 3);
        return;
    }
    /* On one line if it fits, else one item a line. */
    mark = b->len;
    *err = strbuf_add(b, "[ ", 2);
    for (i = 0; i < v->n_items && !*err; i++) {
        if (i)
            *err = strbuf_add(b, ", ", 2);
        format_value(b, &v->items[i], line_start, err);
    }
    if (!*err)
        *err = strbuf_add(b, " ]", 2);
    if (*err || v->n_items == 1 || b->len - line_start <= FORMAT_WIDTH ||
        memchr(b->s + mark, '\n', b->len - mark))
        return;
    b->len = mark;
    *err = strbuf_add(b, "[\n", 2);
    for (i = 0; i < v->n_items && !*err; i++) {
        *err = strbuf_add(b, "    ", 4);
        format_value(b, &v->items[i], b->len - 4, err);
        if (!*err)
            *err = strbuf_add(b, ",\n", 2);
    }
    if (!*err)
        *err = strbuf_addc(b, ']');
}

int xlcfg_format(const struct xlcfg *cfg, char **out, size_t *len)
{
    struct strbuf b = { 0 };
    int err;
    size_t i;

    *out = NULL;
    err = strbuf_add(&b, "", 0);
    for (i = 0; i < cfg->n_settings && !err; i++) {
        const struct setting *s = &cfg->settings[i];
        size_t line_start = b.len;

        err = strbuf_add(&b, s->key, strlen(s->key));
        if (!err)
            err = strbuf_add(&b, " = ", 3);
        format_value(&b, &s->value, line_start, &err);
        if (!err)
            err = strbuf_addc(&b, '\n');
        if (!err && b.len > XLCFG_MAX_INPUT)
            err = -E2BIG;
    }
    if (err) {
        free(b.s);
        return err;
    }
    *out = b.s;
    if (len)
        *len = b.len;
    return 0;
}

/* ---- guest devices: vif= and disk= ----
 * Each list item is a spec string in Xen's syntax.  Both parsers walk the
 * spec in place and keep (pointer, length) spans into it, so nothing is
 * allocated and no spec is too long to parse. */

/* Where a device spec was written, for its messages. */
struct device_at {
    const char *kind;           /* "vif" or "disk" */
    unsigned index;
    const char *file;
    unsigned line;
    const struct tlog *log;
};

/* A user's text quoted in a message: at most this much of it. */
#define QUOTE_MAX 64
#define QUOTE(s, n) (int)((n) > QUOTE_MAX ? QUOTE_MAX : (n)), (s), ((n) > QUOTE_MAX ? "..." : "")

static int device_error(const struct device_at *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int device_error(const struct device_at *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlog_error(at->log, "%s:%u: %s %u: %s", at->file, at->line, at->kind, at->index, msg);
    return -EINVAL;
}

static void device_warn(const struct device_at *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void device_warn(const struct device_at *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tlog_warn(at->log, "%s:%u: %s %u: %s", at->file, at->line, at->kind, at->index, msg);
}

/* Blanks around the parts of a spec: Xen skips them before each part. */
static bool is_spec_blank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_lower(int c) { return c >= 'a' && c <= 'z'; }

static void trim_span(const char **s, size_t *n)
{
    while (*n && is_spec_blank((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_spec_blank((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static bool span_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Copies a span into a buffer of size cap; false if it does not fit. */
static bool span_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

int xlcfg_parse_mac(const char *text, uint8_t mac[6])
{
    uint8_t m[6];
    int i;

    for (i = 0; i < 6; i++) {
        int hi = hex_value((unsigned char)text[0]), lo = hi < 0 ? -1 : hex_value((unsigned char)text[1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        m[i] = (uint8_t)(hi * 16 + lo);
        text += 2;
        if (*text != (i < 5 ? ':' : '\0'))
            return -EINVAL;
        text += i < 5;
    }
    memcpy(mac, m, 6);
    return 0;
}

void xlcfg_format_mac(const uint8_t mac[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool xlcfg_mac_unset(const uint8_t mac[6])
{
    static const uint8_t zero[6];
    return memcmp(mac, zero, 6) == 0;
}

/* Why s (n bytes) cannot name a network interface, or NULL if it can: the
 * rules of Linux's dev_valid_name() (shorter than IFNAMSIZ, not "." or
 * "..", no '/', ':' or blank), and no control characters. */
static const char *ifname_problem(const char *s, size_t n)
{
    size_t i;

    if (n >= DOMAIN_IFNAME_MAX)
        return "is longer than 15 characters (IFNAMSIZ)";
    if (span_is(s, n, ".") || span_is(s, n, ".."))
        return "is not an interface name";
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/' || c == ':' || c <= ' ' || c == 0x7f)
            return "may not contain '/', ':', blanks or control characters";
    }
    return NULL;
}

/* Xen keys that mean nothing to Tandem, accepted with a warning. */
struct ignored_key {
    const char *key;
    const char *why;
};

static const struct ignored_key vif_ignored_keys[] = {
    { "type",       "the guest always sees a virtio-net device" },
    { "model",      "the guest always sees a virtio-net device" },
    { "script",     "no hotplug script runs: Tandem attaches the tap to bridge= itself" },
    { "ip",         "no hotplug script runs to use it" },
    { "gatewaydev", "no hotplug script runs to use it" },
    { "netdev",     "no hotplug script runs to use it" },
    { "backend",    "the backend is always the domain's own process" },
    { "rate",       "Tandem does not limit a vif's rate" },
    { "mtu",        "Tandem leaves the tap's MTU as the bridge sets it" },
    { "accel",      "Xen does not support it either" },
    { "forwarddev", "Xen's COLO vif settings do not apply to Tandem" },
};

static const char *ignored_why(const struct ignored_key *t, size_t n, const char *key, size_t len)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (span_is(key, len, t[i].key))
            return t[i].why;
    return NULL;
}

/* vifspec: comma-separated key=value settings and flags, blanks around
 * each ignored; empty parts (",,", a trailing comma, '') are skipped, as
 * Xen's strtok() skips them. */
int xlcfg_parse_vif(const char *spec, unsigned devid, const char *file, unsigned line,
                    struct domain_vif *out, const struct tlog *log)
{
    const struct device_at at = { "vif", devid, file ? file : "config", line, log };
    bool have_mac = false, have_bridge = false, have_ifname = false, have_devid = false;
    struct domain_vif v;
    const char *p = spec ? spec : "";

    memset(&v, 0, sizeof(v));
    while (*p) {
        const char *part = p, *comma = strchr(p, ','), *eq, *key, *val, *why;
        size_t n = comma ? (size_t)(comma - p) : strlen(p), klen, vlen;

        p = comma ? comma + 1 : p + n;
        trim_span(&part, &n);
        if (n == 0)
            continue;
        eq = memchr(part, '=', n);
        if (!eq) {
            if (span_is(part, n, "trusted") || span_is(part, n, "untrusted")) {
                device_warn(&at, "'%.*s' ignored: advisory only in Xen; Tandem's virtio-net has no such "
                            "setting", (int)n, part);
                continue;
            }
            return device_error(&at, "'%.*s%s' is not a key=value setting", QUOTE(part, n));
        }
        key = part;
        klen = (size_t)(eq - part);
        val = eq + 1;
        vlen = n - klen - 1;
        trim_span(&key, &klen);
        trim_span(&val, &vlen);

        if (span_is(key, klen, "mac")) {
            char text[24];
            if (have_mac)
                return device_error(&at, "mac= is given twice");
            have_mac = true;
            if (!span_copy(text, sizeof(text), val, vlen) || xlcfg_parse_mac(text, v.mac) < 0)
                return device_error(&at, "mac=%.*s%s is not a MAC address (six pairs of hex digits "
                                    "separated by ':', as 00:16:3e:01:02:03)", QUOTE(val, vlen));
            if (xlcfg_mac_unset(v.mac))
                return device_error(&at, "mac=%s is not a usable address (leave mac= out to have one "
                                    "generated)", text);
            if (v.mac[0] & 1)
                return device_error(&at, "mac=%s is a multicast address (the first byte must be even)",
                                    text);
        } else if (span_is(key, klen, "bridge") || span_is(key, klen, "vifname")) {
            bool is_bridge = key[0] == 'b';
            bool *have = is_bridge ? &have_bridge : &have_ifname;
            char *dst = is_bridge ? v.bridge : v.ifname;
            const char *problem = ifname_problem(val, vlen);
            if (*have)
                return device_error(&at, "%s= is given twice", is_bridge ? "bridge" : "vifname");
            *have = true;
            if (problem)
                return device_error(&at, "%s=%.*s%s %s", is_bridge ? "bridge" : "vifname",
                                    QUOTE(val, vlen), problem);
            span_copy(dst, DOMAIN_IFNAME_MAX, val, vlen);
        } else if (span_is(key, klen, "devid")) {
            char text[16];
            long long id = -1;
            if (have_devid)
                return device_error(&at, "devid= is given twice");
            have_devid = true;
            if (!span_copy(text, sizeof(text), val, vlen) || number_value(text, vlen, &id) < 0 ||
                id != (long long)devid)
                return device_error(&at, "devid=%.*s%s: Tandem numbers vifs by their place in the list, "
                                    "and this one is %u", QUOTE(val, vlen), devid);
        } else if ((why = ignored_why(vif_ignored_keys, sizeof(vif_ignored_keys) /
                                      sizeof(vif_ignored_keys[0]), key, klen)) ||
                   (klen > 5 && memcmp(key, "colo_", 5) == 0 &&
                    (why = "Xen's COLO vif settings do not apply to Tandem"))) {
            device_warn(&at, "'%.*s=' ignored: %s", (int)klen, key, why);
        } else {
            return device_error(&at, "unknown key '%.*s%s' (Tandem's vifs take mac=, bridge= and "
                                "vifname=)", QUOTE(key, klen));
        }
    }
    *out = v;
    return 0;
}

/* ---- disk specs ---- */

struct span {
    const char *s;
    size_t n;
    bool set;
};

struct disk_parse {
    struct device_at at;
    struct span target, format, vdev, access;
    bool deprecated_prefix;     /* "file:", "phy:", "raw:" ...: no positional format */
};

/* Sets a parameter; each may be given once, but an empty one (a default)
 * may be given again, as Xen's parser allows. */
static int disk_set(struct disk_parse *d, struct span *sp, const char *name, const char *s, size_t n)
{
    if (sp->set && sp->n && n && (sp->n != n || memcmp(sp->s, s, n) != 0))
        return device_error(&d->at, "%s is given twice ('%.*s%s' and '%.*s%s')", name, QUOTE(sp->s, sp->n),
                            QUOTE(s, n));
    if (!sp->set || n) {
        sp->s = s;
        sp->n = n;
    }
    sp->set = true;
    return 0;
}

static int disk_refuse_cdrom(struct disk_parse *d)
{
    return device_error(&d->at, "CD-ROM drives are not supported: Tandem's disks are virtio-blk "
                        "(devtype=disk)");
}

/* A positional vdev may carry a device type, "hdc:cdrom" (Xen's old
 * syntax).  Returns 1 if it did, 0 if s has no ':', or -EINVAL. */
static int disk_vdev_and_devtype(struct disk_parse *d, const char *s, size_t n)
{
    const char *colon = NULL, *q;
    int r;

    for (q = s; q < s + n; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return 0;
    r = disk_set(d, &d->vdev, "vdev", s, (size_t)(colon - s));
    if (r < 0)
        return r;
    q = colon + 1;
    if (span_is(q, (size_t)(s + n - q), "cdrom"))
        return disk_refuse_cdrom(d);
    if (!span_is(q, (size_t)(s + n - q), "disk"))
        return device_error(&d->at, "unknown device type '%.*s%s' in '%.*s%s' (disk)",
                            QUOTE(q, (size_t)(s + n - q)), QUOTE(s, n));
    return 1;
}

static int disk_positional(struct disk_parse *d, const char *s, size_t n)
{
    int r;

    if (!d->target.set)
        return disk_set(d, &d->target, "target", s, n);
    if (!d->deprecated_prefix && !d->format.set) {
        /* ",hdc:cdrom,r": xend's empty drive, its vdev where the format goes. */
        if (d->target.n == 0 && (r = disk_vdev_and_devtype(d, s, n)) != 0)
            return r < 0 ? r : device_error(&d->at, "no target given");
        return disk_set(d, &d->format, "format", s, n);
    }
    if (!d->vdev.set) {
        r = disk_vdev_and_devtype(d, s, n);
        return r < 0 ? r : r ? 0 : disk_set(d, &d->vdev, "vdev", s, n);
    }
    if (!d->access.set)
        return disk_set(d, &d->access, "access", s, n);
    return device_error(&d->at, "too many positional parameters at '%.*s%s' (target, format, vdev, "
                        "access)", QUOTE(s, n));
}

static const struct ignored_key disk_ignored_keys[] = {
    { "backend",     "the backend is always the domain's own process" },
    { "colo-host",   "Xen's COLO disk settings do not apply to Tandem" },
    { "colo-port",   "Xen's COLO disk settings do not apply to Tandem" },
    { "colo-export", "Xen's COLO disk settings do not apply to Tandem" },
    { "active-disk", "Xen's COLO disk settings do not apply to Tandem" },
    { "hidden-disk", "Xen's COLO disk settings do not apply to Tandem" },
};

static const struct ignored_key disk_ignored_flags[] = {
    { "direct-io-safe", "a workaround of Xen's backends" },
    { "discard",        "Tandem's virtio-blk does not offer discard" },
    { "no-discard",     "Tandem's virtio-blk does not offer discard" },
    { "trusted",        "advisory only in Xen; Tandem's virtio-blk has no such setting" },
    { "untrusted",      "advisory only in Xen; Tandem's virtio-blk has no such setting" },
    { "colo",           "Xen's COLO disk settings do not apply to Tandem" },
    { "no-colo",        "Xen's COLO disk settings do not apply to Tandem" },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int disk_named(struct disk_parse *d, const char *key, size_t klen, const char *val, size_t vlen)
{
    const char *why;

    if (span_is(key, klen, "format"))
        return disk_set(d, &d->format, "format", val, vlen);
    if (span_is(key, klen, "vdev"))
        return disk_set(d, &d->vdev, "vdev", val, vlen);
    if (span_is(key, klen, "access"))
        return disk_set(d, &d->access, "access", val, vlen);
    if (span_is(key, klen, "devtype")) {
        if (span_is(val, vlen, "cdrom"))
            return disk_refuse_cdrom(d);
        if (!span_is(val, vlen, "disk"))
            return device_error(&d->at, "devtype=%.*s%s is not a device type (disk)", QUOTE(val, vlen));
        return 0;
    }
    if (span_is(key, klen, "backendtype")) {
        if (!span_is(val, vlen, "phy") && !span_is(val, vlen, "tap") && !span_is(val, vlen, "qdisk") &&
            !span_is(val, vlen, "standalone"))
            return device_error(&d->at, "backendtype=%.*s%s is not one of Xen's (phy, tap, qdisk, "
                                "standalone)", QUOTE(val, vlen));
        device_warn(&d->at, "'backendtype=%.*s' ignored: Tandem has one backend, which reads the "
                    "image itself", (int)vlen, val);
        return 0;
    }
    if (span_is(key, klen, "specification")) {
        if (span_is(val, vlen, "virtio"))
            return 0;
        if (!span_is(val, vlen, "xen"))
            return device_error(&d->at, "specification=%.*s%s is not xen or virtio", QUOTE(val, vlen));
        device_warn(&d->at, "'specification=xen' ignored: Tandem's disks are virtio-blk");
        return 0;
    }
    if (span_is(key, klen, "grant_usage")) {
        if (!span_is(val, vlen, "0") && !span_is(val, vlen, "1"))
            return device_error(&d->at, "grant_usage=%.*s%s is not 0 or 1", QUOTE(val, vlen));
        device_warn(&d->at, "'grant_usage=' ignored: Tandem's virtio devices use no grants");
        return 0;
    }
    if (span_is(key, klen, "script")) {
        /* The target would be an argument for the script, not a file:
         * opening it as one would be wrong, so this is no mere warning. */
        if (vlen)
            return device_error(&d->at, "script=%.*s%s is not supported: Tandem opens the target as a "
                                "raw image file and runs no block scripts", QUOTE(val, vlen));
        return 0;
    }
    if ((why = ignored_why(disk_ignored_keys, N_OF(disk_ignored_keys), key, klen))) {
        device_warn(&d->at, "'%.*s=' ignored: %s", (int)klen, key, why);
        return 0;
    }
    return device_error(&d->at, "unknown parameter '%.*s%s=' (Tandem's disks take target=, format=, "
                        "vdev= and access=)", QUOTE(key, klen));
}

/* Xen's deprecated prefixes before the target: "file:", "phy:",
 * "tap:aio:", "raw:" ...  Xen's known prefixes count whatever follows them;
 * any other lower-case word and ':' is an unknown prefix only when the end
 * or something other than a letter or digit follows (so "hdc:cdrom" is
 * none).  Returns the length of the prefix consumed, 0 if none, or
 * -EINVAL. */
static int disk_prefix(struct disk_parse *d, const char *p)
{
    static const char *const known[] = {
        "raw", "qcow", "qcow2", "vhd", "iscsi", "nbd", "enbd", "drbd",
        "file", "phy", "tap", "tap2", "aio", "tapdisk", "ioemu",
    };
    const char *q = p;
    bool is_known = false;
    size_t n, i;

    if (!is_lower((unsigned char)*q))
        return 0;
    while (is_lower((unsigned char)*q) || is_digit((unsigned char)*q))
        q++;
    if (*q != ':')
        return 0;
    n = (size_t)(q - p);
    for (i = 0; i < N_OF(known); i++)
        is_known |= span_is(p, n, known[i]);
    if (!is_known && (is_lower((unsigned char)q[1]) || is_digit((unsigned char)q[1])))
        return 0;
    if (span_is(p, n, "raw") || span_is(p, n, "qcow") || span_is(p, n, "qcow2") || span_is(p, n, "vhd")) {
        int r = disk_set(d, &d->format, "format", p, n);
        if (r < 0)
            return r;
    } else if (span_is(p, n, "iscsi") || span_is(p, n, "nbd") || span_is(p, n, "enbd") ||
               span_is(p, n, "drbd")) {
        return device_error(&d->at, "'%.*s:' names a block script (script=block-%.*s), which Tandem does "
                            "not run: it opens the target as a raw image file", (int)n, p, (int)n, p);
    } else if (!span_is(p, n, "file") && !span_is(p, n, "phy") && !span_is(p, n, "tap") &&
               !span_is(p, n, "tap2") && !span_is(p, n, "aio") && !span_is(p, n, "tapdisk") &&
               !span_is(p, n, "ioemu")) {
        return device_error(&d->at, "unknown prefix '%.*s%s:'", QUOTE(p, n));
    }
    d->deprecated_prefix = true;
    return (int)n + 1;
}

/* The whole disks Xen's vbd interface names: xvd, hd, sd or vd followed by
 * one to three letters (no partitions, no numeric forms). */
static bool vdev_name_valid(const char *s, size_t n)
{
    static const char *const prefixes[] = { "xvd", "hd", "sd", "vd" };
    size_t i, j, plen;

    for (i = 0; i < N_OF(prefixes); i++) {
        plen = strlen(prefixes[i]);
        if (n <= plen || n > plen + 3 || memcmp(s, prefixes[i], plen) != 0)
            continue;
        for (j = plen; j < n; j++)
            if (!is_lower((unsigned char)s[j]))
                return false;
        return true;
    }
    return false;
}

/* diskspec: Xen's positional form "target,format,vdev,access", key=value
 * parameters and flags in any mix, blanks around each part ignored; a
 * target= takes the rest of the spec, commas and trailing blanks and all
 * (one trailing comma dropped), as in Xen. */
int xlcfg_parse_disk(const char *spec, unsigned index, const char *file, unsigned line,
                     struct domain_disk *out, const struct tlog *log)
{
    struct disk_parse d = { .at = { "disk", index, file ? file : "config", line, log } };
    struct domain_disk disk;
    const char *p = spec ? spec : "", *q, *why;
    int r;

    while (*p) {
        const char *part, *eq;
        size_t n;

        while (is_spec_blank((unsigned char)*p))
            p++;
        if (!*p)
            break;
        /* target=, blanks allowed before the '=' */
        for (q = p + (strncmp(p, "target", 6) == 0 ? 6 : 0); q > p && is_spec_blank((unsigned char)*q); q++)
            ;
        if (q > p && *q == '=') {
            /* Blanks after the '=' go too (Xen would keep them, and make
             * the target a name under /dev). */
            for (q++; is_spec_blank((unsigned char)*q); q++)
                ;
            n = strlen(q);
            if (n && q[n - 1] == ',')
                n--;
            r = disk_set(&d, &d.target, "target", q, n);
            if (r < 0)
                return r;
            break;
        }
        r = disk_prefix(&d, p);
        if (r < 0)
            return r;
        if (r > 0) {
            p += r;
            continue;
        }
        part = p;
        q = strchr(p, ',');
        n = q ? (size_t)(q - p) : strlen(p);
        p = q ? q + 1 : p + n;
        trim_span(&part, &n);
        eq = memchr(part, '=', n);
        if (eq) {
            const char *key = part, *val = eq + 1;
            size_t klen = (size_t)(eq - part), vlen = n - klen - 1;
            trim_span(&key, &klen);
            trim_span(&val, &vlen);
            r = disk_named(&d, key, klen, val, vlen);
        } else if (span_is(part, n, "cdrom")) {
            r = disk_refuse_cdrom(&d);
        } else if ((why = ignored_why(disk_ignored_flags, N_OF(disk_ignored_flags), part, n))) {
            device_warn(&d.at, "'%.*s' ignored: %s", (int)n, part, why);
            r = 0;
        } else {
            r = disk_positional(&d, part, n);
        }
        if (r < 0)
            return r;
    }

    memset(&disk, 0, sizeof(disk));
    /* format: raw, also when given empty (the default) */
    if (d.format.n && !span_is(d.format.s, d.format.n, "raw")) {
        const struct span *f = &d.format;
        if (span_is(f->s, f->n, "qcow") || span_is(f->s, f->n, "qcow2") || span_is(f->s, f->n, "vhd") ||
            span_is(f->s, f->n, "qed"))
            return device_error(&d.at, "format %.*s is not supported: Tandem reads raw images only "
                                "(qemu-img convert -O raw makes one)", (int)f->n, f->s);
        if (span_is(f->s, f->n, "empty"))
            return device_error(&d.at, "format empty (a drive without a medium) is not supported");
        return device_error(&d.at, "unknown format '%.*s%s' (Tandem reads raw images)", QUOTE(f->s, f->n));
    }
    if (!d.access.n || span_is(d.access.s, d.access.n, "rw") || span_is(d.access.s, d.access.n, "w")) {
        disk.readonly = false;
    } else if (span_is(d.access.s, d.access.n, "ro") || span_is(d.access.s, d.access.n, "r")) {
        disk.readonly = true;
    } else {
        return device_error(&d.at, "access=%.*s%s is not r, ro, rw or w", QUOTE(d.access.s, d.access.n));
    }
    if (!d.vdev.n)
        return device_error(&d.at, "no vdev given (the disk's name for the guest, such as xvda)");
    if (!vdev_name_valid(d.vdev.s, d.vdev.n))
        return device_error(&d.at, "vdev '%.*s%s' is not xvd, hd, sd or vd followed by one to three "
                            "lower-case letters", QUOTE(d.vdev.s, d.vdev.n));
    span_copy(disk.vdev, sizeof(disk.vdev), d.vdev.s, d.vdev.n);
    if (!d.target.n)
        return device_error(&d.at, "no target given (the raw image file)");
    /* As in Xen, a target that does not start with '/' is a name under /dev. */
    if (d.target.s[0] != '/') {
        if (d.target.n + 5 >= sizeof(disk.target))
            return device_error(&d.at, "target /dev/%.*s%s is longer than %zu characters",
                                QUOTE(d.target.s, d.target.n), sizeof(disk.target) - 1);
        memcpy(disk.target, "/dev/", 5);
        span_copy(disk.target + 5, sizeof(disk.target) - 5, d.target.s, d.target.n);
    } else if (!span_copy(disk.target, sizeof(disk.target), d.target.s, d.target.n)) {
        return device_error(&d.at, "target %.*s%s is longer than %zu characters",
                            QUOTE(d.target.s, d.target.n), sizeof(disk.target) - 1);
    }
    *out = disk;
    return 0;
}

/* ---- device lists ---- */

/* An item of a vif or disk list as a spec string; items that are numbers
 * give their text, as everywhere in xl.cfg. */
static int list_item_spec(const struct xlcfg_value *it, const char *key, size_t i, const struct tlog *log,
                          const char **out)
{
    if (it->kind == XLCFG_LIST) {
        tlog_error(log, "%s:%u: item %zu of '%s' is a list but should be a string", it->file, it->line,
                   i + 1, key);
        return -EINVAL;
    }
    *out = it->str;
    return 0;
}

int xlcfg_get_vifs(struct xlcfg *cfg, struct domain_config *c, const struct tlog *log)
{
    const struct xlcfg_value *list;
    struct domain_vif vifs[DOMAIN_MAX_VIFS];
    size_t i, j;
    int r;

    c->nr_vifs = 0;
    memset(c->vifs, 0, sizeof(c->vifs));
    r = xlcfg_get_list(cfg, "vif", &list, log);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    for (i = 0; i < list->n_items; i++) {
        const struct xlcfg_value *it = &list->items[i];
        const struct device_at at = { "vif", (unsigned)i, it->file, it->line, log };
        const char *spec;

        if (i == DOMAIN_MAX_VIFS) {
            tlog_error(log, "%s:%u: more than %d vifs: Tandem gives a guest at most %d", it->file, it->line,
                       DOMAIN_MAX_VIFS, DOMAIN_MAX_VIFS);
            return -EINVAL;
        }
        if ((r = list_item_spec(it, "vif", i, log, &spec)) < 0 ||
            (r = xlcfg_parse_vif(spec, (unsigned)i, it->file, it->line, &vifs[i], log)) < 0)
            return r;
        for (j = 0; j < i; j++) {
            char mac[18];
            if (!xlcfg_mac_unset(vifs[i].mac) && memcmp(vifs[i].mac, vifs[j].mac, 6) == 0) {
                xlcfg_format_mac(vifs[i].mac, mac);
                return device_error(&at, "mac=%s is already vif %zu's", mac, j);
            }
            if (vifs[i].ifname[0] && strcmp(vifs[i].ifname, vifs[j].ifname) == 0)
                return device_error(&at, "vifname=%s is already vif %zu's", vifs[i].ifname, j);
        }
    }
    memcpy(c->vifs, vifs, i * sizeof(vifs[0]));
    c->nr_vifs = (unsigned)i;
    return 0;
}

int xlcfg_get_disks(struct xlcfg *cfg, struct domain_config *c, const struct tlog *log)
{
    const struct xlcfg_value *list;
    struct domain_disk *disks;
    size_t i, j;
    int r;

    c->nr_disks = 0;
    memset(c->disks, 0, sizeof(c->disks));
    r = xlcfg_get_list(cfg, "disk", &list, log);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    /* Four kilobyte-sized paths: on the heap rather than the stack. */
    disks = calloc(DOMAIN_MAX_DISKS, sizeof(*disks));
    if (!disks) {
        tlog_error(log, "disk: out of memory");
        return -ENOMEM;
    }
    for (i = 0; i < list->n_items; i++) {
        const struct xlcfg_value *it = &list->items[i];
        const struct device_at at = { "disk", (unsigned)i, it->file, it->line, log };
        const char *spec;

        if (i == DOMAIN_MAX_DISKS) {
            tlog_error(log, "%s:%u: more than %d disks: Tandem gives a guest at most %d", it->file,
                       it->line, DOMAIN_MAX_DISKS, DOMAIN_MAX_DISKS);
            r = -EINVAL;
            goto out;
        }
        if ((r = list_item_spec(it, "disk", i, log, &spec)) < 0 ||
            (r = xlcfg_parse_disk(spec, (unsigned)i, it->file, it->line, &disks[i], log)) < 0)
            goto out;
        for (j = 0; j < i; j++) {
            if (strcmp(disks[i].vdev, disks[j].vdev) == 0) {
                r = device_error(&at, "vdev %s is already disk %zu's", disks[i].vdev, j);
                goto out;
            }
        }
    }
    memcpy(c->disks, disks, i * sizeof(disks[0]));
    c->nr_disks = (unsigned)i;
    r = 0;
out:
    free(disks);
    return r;
}

/* ---- MACs ---- */

static int random_bytes(uint8_t *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    return 0;
}

int xlcfg_assign_macs(struct domain_config *c, const struct tlog *log)
{
    unsigned i, j, n = c->nr_vifs < DOMAIN_MAX_VIFS ? c->nr_vifs : DOMAIN_MAX_VIFS;

    for (i = 0; i < n; i++) {
        uint8_t mac[6] = { 0x00, 0x16, 0x3e };
        bool taken;

        if (!xlcfg_mac_unset(c->vifs[i].mac))
            continue;
        do {
            int r = random_bytes(mac + 3, 3);
            if (r < 0) {
                char eb[128];
                tlog_error(log, "vif %u: cannot get random bytes for its MAC: %s", i,
                           strerror_r(-r, eb, sizeof(eb)));
                return r;
            }
            /* libxl keeps generated MACs in the lower half of Xen's range. */
            mac[3] &= 0x7f;
            taken = false;
            for (j = 0; j < n; j++)
                taken |= j != i && memcmp(c->vifs[j].mac, mac, 6) == 0;
        } while (taken);
        memcpy(c->vifs[i].mac, mac, 6);
    }
    return 0;
}

void xlcfg_keep_macs(struct domain_config *c, const struct domain_config *from)
{
    unsigned i, j, n = c->nr_vifs < DOMAIN_MAX_VIFS ? c->nr_vifs : DOMAIN_MAX_VIFS;
    unsigned nf = from->nr_vifs < DOMAIN_MAX_VIFS ? from->nr_vifs : DOMAIN_MAX_VIFS;

    for (i = 0; i < n && i < nf; i++) {
        bool taken = false;

        if (!xlcfg_mac_unset(c->vifs[i].mac) || xlcfg_mac_unset(from->vifs[i].mac))
            continue;
        for (j = 0; j < n; j++)
            taken |= memcmp(c->vifs[j].mac, from->vifs[i].mac, 6) == 0;
        if (!taken)
            memcpy(c->vifs[i].mac, from->vifs[i].mac, 6);
    }
}
