/* cfg.c: loads and validates environment variables described by a table (see cfg.h). */
#include "cfg.h"

#include "kafka.h"
#include "util.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

struct cfg_value {
    const struct cfg_def *def;
    char *text; /* NULL = not set (optional, no default) */
    long long num;
    double dbl;
};

struct cfg {
    struct cfg_value *vals;
    size_t n;
};

/* Reads a whole file into a new string with trailing newlines (\n, \r\n) stripped. */
static char *read_file(const char *path, char *err, size_t errlen, const char *var)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        util_err(err, errlen, "%s_FILE: cannot read %s: %s", var, path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 20) * 4) { /* 4 MiB: no sane setting is that large */
                util_err(err, errlen, "%s_FILE: %s is too large", var, path);
                goto fail;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                util_err(err, errlen, "%s_FILE: out of memory", var);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                util_err(err, errlen, "%s_FILE: error reading %s", var, path);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    if (!buf && !(buf = malloc(1))) {
        util_err(err, errlen, "%s_FILE: out of memory", var);
        return NULL;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* The raw value of NAME from NAME or NAME_FILE: a new string, or NULL with *found = false when
 * neither is set. Setting both is an error (ambiguous). -1 on error. */
static int env_value(const char *name, char **out, char *err, size_t errlen)
{
    char fname[256];
    *out = NULL;
    snprintf(fname, sizeof fname, "%s_FILE", name);
    const char *direct = getenv(name);
    const char *file = getenv(fname);
    if (direct && file && *file) {
        util_err(err, errlen, "%s: set either %s or %s_FILE, not both", name, name, name);
        return -1;
    }
    if (file && *file) {
        *out = read_file(file, err, errlen, name);
        return *out ? 0 : -1;
    }
    if (direct) {
        *out = strdup(direct);
        if (!*out) {
            util_err(err, errlen, "%s: out of memory", name);
            return -1;
        }
    }
    return 0;
}

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || isspace((unsigned char)*s))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, long long *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* Index of s among "a|b|c" (case-insensitive) into *out; -1 if absent. */
static int enum_index(const char *choices, const char *s, long long *out)
{
    size_t len = strlen(s);
    long long i = 0;
    for (const char *p = choices; p && *p; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && len > 0 && strncasecmp(p, s, n) == 0) {
            *out = i;
            return 0;
        }
        p = bar ? bar + 1 : NULL;
    }
    return -1;
}

/* A comma-separated list of durations (blanks around items ignored) into out; the count, or -1
 * when an item is not a duration, lies outside [min, max], or there are none or too many. */
static int parse_durations(const char *name, const char *s, long long min, long long max,
                           long long *out, size_t outmax);

/* "250" in the unit the name implies (_MS → ms, _S → s), or "250ms", "10s", "5m", "1h". */
static int parse_duration(const char *name, const char *s, long long *out_ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0 || isspace((unsigned char)*s))
        return -1;
    long long mult;
    if (*end == '\0') {
        size_t n = strlen(name);
        mult = (n > 3 && strcmp(name + n - 3, "_MS") == 0) ? 1 : 1000;
    } else if (strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (strcmp(end, "s") == 0) {
        mult = 1000;
    } else if (strcmp(end, "m") == 0) {
        mult = 60000;
    } else if (strcmp(end, "h") == 0) {
        mult = 3600000;
    } else {
        return -1;
    }
    if (v > LLONG_MAX / mult)
        return -1;
    *out_ms = v * mult;
    return 0;
}

static int parse_durations(const char *name, const char *s, long long min, long long max,
                           long long *out, size_t outmax)
{
    size_t n = 0;
    const char *p = s;
    for (;;) {
        char item[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        long long ms;
        if (len == 0 || len >= sizeof item || n >= outmax)
            return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        if (parse_duration(name, item, &ms) != 0 || ms < min || ms > max)
            return -1;
        out[n++] = ms;
        if (!comma)
            return (int)n;
        p = comma + 1;
    }
}

int cfg_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (!s || !*s)
        return -1;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    long long p;
    if (parse_ll(colon + 1, &p) != 0 || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* http(s)://host[...], as libcurl parses it (the URL the clients will use). */
static bool valid_url(const char *s)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, s, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static const char *type_hint(const struct cfg_def *d)
{
    switch (d->type) {
    case CFG_INT:
        return "an integer";
    case CFG_BOOL:
        return "a boolean (1/0, true/false, yes/no, on/off)";
    case CFG_DURATION:
        return "a duration (a number, or with ms/s/m/h)";
    case CFG_HOSTPORT:
        return "host:port";
    case CFG_DOUBLE:
        return "a number";
    case CFG_ENUM:
        return d->choices;
    case CFG_DURATIONS:
        return "a comma-separated list of durations (each a number, or with ms/s/m/h)";
    case CFG_URL:
        return "an http:// or https:// URL";
    case CFG_BASE64:
        return "base64 (standard alphabet, padded)";
    default:
        return "a non-empty string";
    }
}

/* Validates text for d into v. 0, or -1 with err naming the variable. */
static int convert(const struct cfg_def *d, struct cfg_value *v, char *err, size_t errlen)
{
    const char *s = v->text;
    long long n = 0;
    int rc = 0;
    switch (d->type) {
    case CFG_STR:
        rc = *s ? 0 : -1;
        break;
    case CFG_ENUM:
        rc = enum_index(d->choices, s, &n);
        break;
    case CFG_INT:
        rc = parse_ll(s, &n);
        break;
    case CFG_BOOL:
        rc = parse_bool(s, &n);
        break;
    case CFG_DURATION:
        rc = parse_duration(d->name, s, &n);
        break;
    case CFG_DURATIONS: {
        long long list[CFG_DURATIONS_MAX];
        rc = parse_durations(d->name, s, d->min, d->max ? d->max : LLONG_MAX, list,
                             CFG_DURATIONS_MAX) > 0
                 ? 0
                 : -1;
        break;
    }
    case CFG_HOSTPORT: {
        char host[256];
        int port;
        rc = cfg_parse_hostport(s, host, sizeof host, &port);
        break;
    }
    case CFG_URL:
        rc = valid_url(s) ? 0 : -1;
        break;
    case CFG_BASE64: {
        size_t len = strlen(s);
        unsigned char *buf = malloc(len / 4 * 3 + 3);
        rc = buf && util_b64_decode(s, len, buf, len / 4 * 3 + 3) > 0 ? 0 : -1;
        if (buf)
            OPENSSL_cleanse(buf, len / 4 * 3 + 3);
        free(buf);
        break;
    }

    case CFG_DOUBLE: {
        char *end;
        errno = 0;
        v->dbl = strtod(s, &end);
        rc = (errno || end == s || *end || !isfinite(v->dbl)) ? -1 : 0;
        if (rc == 0 && (v->dbl < (double)d->min || v->dbl > (double)d->max)) {
            util_err(err, errlen, "%s: %s is out of range [%lld, %lld]", d->name,
                     d->secret ? "value" : s, d->min, d->max);
            return -1;
        }
        break;
    }
    }
    if (rc != 0) {
        if (d->secret)
            util_err(err, errlen, "%s: invalid value, expected %s", d->name, type_hint(d));
        else
            util_err(err, errlen, "%s: invalid value \"%s\", expected %s", d->name, s,
                     type_hint(d));
        return -1;
    }
    if ((d->type == CFG_INT || d->type == CFG_DURATION) && (n < d->min || n > d->max)) {
        if (d->type == CFG_DURATION)
            util_err(err, errlen, "%s: %s is out of range [%lld ms, %lld ms]", d->name, s, d->min,
                     d->max);
        else
            util_err(err, errlen, "%s: %s is out of range [%lld, %lld]", d->name, s, d->min,
                     d->max);
        return -1;
    }
    v->num = n;
    return 0;
}

/* A KAFKA_CFG_* passthrough may tune librdkafka, never change what the design depends on. */
struct design_check {
    char *err;
    size_t errlen;
};

static int design_setting(const char *name, const char *value, void *ud)
{
    struct design_check *dc = ud;
    const char *fixed = kafka_fixed_setting(name);
    if (!fixed || strcasecmp(value, fixed) == 0)
        return 0;
    char var[300];
    size_t n = (size_t)snprintf(var, sizeof var, "KAFKA_CFG_");
    for (const char *p = name; *p && n + 1 < sizeof var; p++)
        var[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    var[n] = '\0';
    util_err(dc->err, dc->errlen,
             "%s: %s is fixed to %s by the design (SPEC §1.1, §2); remove the variable", var, name,
             fixed);
    return -1;
}

int cfg_load(struct cfg **out, const struct cfg_def *defs, unsigned users, char *err, size_t errlen)
{
    struct cfg *cfg = NULL;
    size_t count = 0;
    *out = NULL;
    for (const struct cfg_def *d = defs; d->name; d++)
        if (d->users & users)
            count++;
    cfg = calloc(1, sizeof *cfg);
    if (!cfg || !(cfg->vals = calloc(count ? count : 1, sizeof *cfg->vals))) {
        util_err(err, errlen, "out of memory");
        goto fail;
    }
    for (const struct cfg_def *d = defs; d->name; d++) {
        if (!(d->users & users))
            continue;
        struct cfg_value *v = &cfg->vals[cfg->n++];
        v->def = d;
        if (env_value(d->name, &v->text, err, errlen) != 0)
            goto fail;
        if (!v->text && d->def && !(v->text = strdup(d->def))) {
            util_err(err, errlen, "out of memory");
            goto fail;
        }
        if (!v->text) {
            if (d->required) {
                util_err(err, errlen, "%s: required but not set (%s)", d->name, d->help);
                goto fail;
            }
            continue;
        }
        if (convert(d, v, err, errlen) != 0)
            goto fail;
    }
    struct design_check dc = {err, errlen};
    if (cfg_foreach_kafka(design_setting, &dc, err, errlen) != 0)
        goto fail;
    *out = cfg;
    return 0;
fail:
    cfg_free(cfg);
    return -1;
}

void cfg_free(struct cfg *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++)
        free(cfg->vals[i].text);
    free(cfg->vals);
    free(cfg);
}

static const struct cfg_value *lookup(const struct cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->vals[i].def->name, name) == 0)
            return &cfg->vals[i];
    fprintf(stderr, "cfg: %s was not loaded for this program (bug)\n", name);
    abort();
}

const char *cfg_str(const struct cfg *cfg, const char *name)
{
    return lookup(cfg, name)->text;
}

long long cfg_int(const struct cfg *cfg, const char *name)
{
    return lookup(cfg, name)->num;
}

bool cfg_bool(const struct cfg *cfg, const char *name)
{
    return lookup(cfg, name)->num != 0;
}

long long cfg_duration_ms(const struct cfg *cfg, const char *name)
{
    return lookup(cfg, name)->num;
}

size_t cfg_durations_ms(const struct cfg *cfg, const char *name, long long *out, size_t max)
{
    const struct cfg_value *v = lookup(cfg, name);
    int n = v->text ? parse_durations(name, v->text, v->def->min,
                                      v->def->max ? v->def->max : LLONG_MAX, out, max)
                    : -1;
    return n > 0 ? (size_t)n : 0;
}

double cfg_double(const struct cfg *cfg, const char *name)
{
    return lookup(cfg, name)->dbl;
}

int cfg_hostport(const struct cfg *cfg, const char *name, char *host, size_t hostlen, int *port)
{
    const struct cfg_value *v = lookup(cfg, name);
    return v->text ? cfg_parse_hostport(v->text, host, hostlen, port) : -1;
}

void cfg_help(FILE *out, const char *prog, const char *summary, const struct cfg_def *defs,
              unsigned users)
{
    fprintf(out, "Usage: %s [--help]\n\n%s\n\n", prog, summary);
    fprintf(out, "Configuration (environment; every X may instead be given as X_FILE, a path to a "
                 "file holding the value):\n\n");
    for (const struct cfg_def *d = defs; d->name; d++) {
        if (!(d->users & users))
            continue;
        fprintf(out, "  %-26s %s", d->name, d->help);
        if (d->choices)
            fprintf(out, ": %s", d->choices);
        if (d->required)
            fprintf(out, " (required)");
        else if (d->def && d->secret)
            fprintf(out, " (secret; has a development default)");
        else if (d->def)
            fprintf(out, " (default: %s)", *d->def ? d->def : "\"\"");
        fputc('\n', out);
    }
    if (users & (CFG_PRODUCER | CFG_WORKER | CFG_CTL))
        fprintf(out, "  %-26s %s\n", "KAFKA_CFG_<NAME>",
                "any librdkafka property, name lowercased with '_' as '.' "
                "(KAFKA_CFG_SECURITY_PROTOCOL=SASL_SSL)");
}

struct cfg *cfg_load_or_exit(int argc, char **argv, const char *summary, unsigned users)
{
    const char *prog = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
    prog = prog ? prog + 1 : (argc > 0 && argv[0] ? argv[0] : "vmh");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cfg_help(stdout, prog, summary, cfg_vars, users);
            exit(0);
        }
        fprintf(stderr,
                "%s: unknown argument \"%s\" (configuration comes from the environment; "
                "see --help)\n",
                prog, argv[i]);
        exit(2);
    }
    char err[512];
    struct cfg *cfg;
    if (cfg_load(&cfg, cfg_vars, users, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        exit(2);
    }
    return cfg;
}

int cfg_foreach_kafka(int (*fn)(const char *name, const char *value, void *ud), void *ud, char *err,
                      size_t errlen)
{
    static const char prefix[] = "KAFKA_CFG_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char var[256], prop[256];
        size_t n = (size_t)(eq - *e);
        if (n >= sizeof var || n == sizeof prefix - 1) {
            util_err(err, errlen, "%.*s: name too long or empty", (int)(n > 64 ? 64 : n), *e);
            return -1;
        }
        memcpy(var, *e, n);
        var[n] = '\0';
        bool is_file = n > 5 && strcmp(var + n - 5, "_FILE") == 0;
        if (is_file)
            var[n - 5] = '\0';
        char *value;
        if (is_file) {
            if (getenv(var)) /* both given: handled when the plain one is visited */
                continue;
            value = read_file(eq + 1, err, errlen, var);
            if (!value)
                return -1;
        } else if (env_value(var, &value, err, errlen) != 0) {
            return -1;
        }
        size_t j = 0;
        for (const char *p = var + sizeof prefix - 1; *p && j + 1 < sizeof prop; p++)
            prop[j++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        prop[j] = '\0';
        int rc = value ? fn(prop, value, ud) : 0;
        free(value);
        if (rc != 0)
            return rc;
    }
    return 0;
}
