/* marker.c: the marker codec of SPEC §5.4 (see marker.h). Base64 on OpenSSL; UTF-8 checked
 * by jansson (the value ends up in EspoCRM's JSON). */
#include "marker.h"

#include "util.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_OPEN "[ESPOCRM:"
#define SLOT_OPEN  "[ESPOCRM-SLOT:"

/* A kommKz: 1 or 2 digits, no leading zero, 1..12, then ']'. Its length with the ']', or 0. */
static size_t parse_kz(const char *p, int *kz)
{
    if (p[0] < '1' || p[0] > '9')
        return 0;
    int v = p[0] - '0';
    size_t n = 1;
    if (p[1] >= '0' && p[1] <= '9')
        v = v * 10 + (p[n++] - '0');
    if (p[n] != ']' || v > 12)
        return 0;
    *kz = v;
    return n + 1;
}

/* A marker at p: its length (0 if none), with kind, kz and the decoded value (malloc'd). */
static size_t parse_at(const char *p, enum marker_kind *kind, int *kz, char **value)
{
    if (strncmp(p, SLOT_OPEN, strlen(SLOT_OPEN)) == 0) {
        size_t n = parse_kz(p + strlen(SLOT_OPEN), kz);
        *kind = MARKER_SLOT;
        return n ? strlen(SLOT_OPEN) + n : 0;
    }
    if (strncmp(p, VALUE_OPEN, strlen(VALUE_OPEN)) != 0)
        return 0;
    const char *b64 = p + strlen(VALUE_OPEN);
    size_t len = strcspn(b64, ":]");
    size_t n = b64[len] == ':' ? parse_kz(b64 + len + 1, kz) : 0;
    if (!n || len == 0)
        return 0;
    unsigned char *buf = malloc(len / 4 * 3 + 1);
    int vlen = buf ? util_b64_decode(b64, len, buf, len / 4 * 3) : -1;
    json_t *utf8 = vlen > 0 && !memchr(buf, '\0', (size_t)vlen)
                       ? json_stringn((const char *)buf, (size_t)vlen)
                       : NULL; /* NULL: not UTF-8 */
    if (!utf8) {
        free(buf);
        return 0;
    }
    json_decref(utf8);
    buf[vlen] = '\0';
    *kind = MARKER_VALUE;
    *value = (char *)buf;
    return strlen(VALUE_OPEN) + len + 1 + n;
}

int marker_parse(const char *bemerkung, struct marker *m)
{
    const char *text = bemerkung ? bemerkung : "";
    memset(m, 0, sizeof *m);
    for (const char *p = strchr(text, '['); p; p = strchr(p + 1, '[')) {
        size_t n = parse_at(p, &m->kind, &m->kz, &m->value);
        if (!n)
            continue;
        /* The user's text: before + after, less the one space that separated them. */
        size_t before = (size_t)(p - text);
        const char *after = p + n;
        if (*after == ' ')
            after++;
        else if (before > 0 && text[before - 1] == ' ' && !*after)
            before--;
        m->user = malloc(before + strlen(after) + 1);
        if (!m->user) {
            marker_free(m);
            return -1;
        }
        memcpy(m->user, text, before);
        strcpy(m->user + before, after);
        return 0;
    }
    m->kind = MARKER_NONE;
    m->kz = 0;
    m->user = strdup(text);
    return m->user ? 0 : -1;
}

void marker_free(struct marker *m)
{
    free(m->value);
    free(m->user);
    memset(m, 0, sizeof *m);
}

char *marker_format(const char *value, int kz, const char *user)
{
    if (kz < 1 || kz > 12 || (value && !*value))
        return NULL;
    size_t vlen = value ? strlen(value) : 0, ulen = user ? strlen(user) : 0;
    size_t cap = 4 * ((vlen + 2) / 3) + ulen + 32;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n;
    if (value) {
        n = (size_t)snprintf(out, cap, VALUE_OPEN);
        n += (size_t)EVP_EncodeBlock((unsigned char *)out + n, (const unsigned char *)value,
                                     (int)vlen);
        n += (size_t)snprintf(out + n, cap - n, ":%d]", kz);
    } else {
        n = (size_t)snprintf(out, cap, SLOT_OPEN "%d]", kz);
    }
    if (ulen)
        snprintf(out + n, cap - n, " %s", user);
    return out;
}
