/* wauth.c: EspoCRM webhook signatures (see wauth.h). HMAC, base64 and the constant-time compare
 * come from OpenSSL. */
#include "wauth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define WAUTH_MAC_LEN 32 /* SHA-256 */

struct wauth_secret {
    char *id;
    char *key;
};

struct wauth {
    struct wauth_secret *s;
    size_t n;
};

void wauth_free(struct wauth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->s[i].id);
        if (a->s[i].key)
            OPENSSL_cleanse(a->s[i].key, strlen(a->s[i].key));
        free(a->s[i].key);
    }
    free(a->s);
    free(a);
}

struct wauth *wauth_parse(const char *secrets, char *err, size_t errlen)
{
    struct wauth *a = calloc(1, sizeof *a);
    if (!a || !secrets) {
        util_err(err, errlen, a ? "no secrets given" : "out of memory");
        goto err;
    }
    size_t count = 1;
    for (const char *p = secrets; *p; p++)
        count += *p == ',';
    if (!(a->s = calloc(count, sizeof *a->s))) {
        util_err(err, errlen, "out of memory");
        goto err;
    }
    const char *p = secrets;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        if (!colon || colon == p || colon + 1 == p + len) {
            util_err(err, errlen, "entry %zu is not webhookId:secretKey", i + 1);
            goto err;
        }
        a->s[i].id = strndup(p, (size_t)(colon - p));
        a->s[i].key = strndup(colon + 1, len - (size_t)(colon + 1 - p));
        a->n++;
        if (!a->s[i].id || !a->s[i].key) {
            util_err(err, errlen, "out of memory");
            goto err;
        }
        p = end ? end + 1 : p + len;
    }
    return a;
err:
    wauth_free(a);
    return NULL;
}

static const char *secret_for(const struct wauth *a, const char *id, size_t idlen)
{
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->s[i].id) == idlen && memcmp(a->s[i].id, id, idlen) == 0)
            return a->s[i].key;
    return NULL;
}

/* Base64-decodes s into a new buffer (*len). NULL if not base64. */
static unsigned char *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 4 != 0 || n > 4096)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (got < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding as zero bytes: take them off. */
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *len = (size_t)got - pad;
    return out;
}

enum wauth_result wauth_verify(const struct wauth *a, const char *header, const char *body,
                               size_t len)
{
    if (!header || !*header)
        return WAUTH_MISSING;
    size_t dlen = 0;
    unsigned char *dec = b64_decode(header, &dlen);
    if (!dec)
        return WAUTH_MALFORMED;
    enum wauth_result r = WAUTH_MALFORMED;
    unsigned char *colon = memchr(dec, ':', dlen);
    if (colon) {
        size_t idlen = (size_t)(colon - dec);
        size_t maclen = dlen - idlen - 1;
        const char *key = secret_for(a, (const char *)dec, idlen);
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mlen = 0;
        if (!key) {
            r = WAUTH_UNKNOWN_WEBHOOK;
        } else if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, len, mac,
                         &mlen) ||
                   maclen != WAUTH_MAC_LEN || mlen != WAUTH_MAC_LEN) {
            r = WAUTH_BAD_MAC;
        } else {
            r = CRYPTO_memcmp(mac, colon + 1, WAUTH_MAC_LEN) == 0 ? WAUTH_OK : WAUTH_BAD_MAC;
        }
    }
    free(dec);
    return r;
}

const char *wauth_result_name(enum wauth_result r)
{
    static const char *const names[] = {"ok", "missing signature", "malformed signature",
                                        "unknown webhook id", "wrong signature"};
    return (unsigned)r < 5 ? names[r] : "?";
}

char *wauth_sign(const char *webhook_id, const char *secret, const char *body, size_t len)
{
    size_t idlen = strlen(webhook_id);
    unsigned char *raw = malloc(idlen + 1 + EVP_MAX_MD_SIZE);
    char *out = NULL;
    unsigned int mlen = 0;
    if (!raw)
        return NULL;
    memcpy(raw, webhook_id, idlen);
    raw[idlen] = ':';
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len,
             raw + idlen + 1, &mlen)) {
        size_t rlen = idlen + 1 + mlen;
        out = malloc(4 * ((rlen + 2) / 3) + 1);
        if (out)
            EVP_EncodeBlock((unsigned char *)out, raw, (int)rlen);
    }
    free(raw);
    return out;
}
