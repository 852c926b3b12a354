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
