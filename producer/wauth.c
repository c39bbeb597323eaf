/* wauth.c: EspoCRM webhook signatures, Signature (hex MAC) and X-Signature (raw MAC) (see
 * wauth.h). HMAC, base64 and the constant-time compare come from OpenSSL. */
#include "wauth.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define WAUTH_MAC_LEN 32                  /* SHA-256 */
#define WAUTH_HEX_LEN (2 * WAUTH_MAC_LEN) /* its lower-case hex form */

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

/* The item [p, p + len) without the whitespace around it. */
static void trim(const char **p, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**p)) {
        (*p)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*p)[*len - 1]))
        (*len)--;
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
    const char *next = secrets;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(next, ',');
        const char *p = next;
        size_t len = end ? (size_t)(end - next) : strlen(next);
        next = end ? end + 1 : next + len;
        trim(&p, &len);
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

const char *wauth_header_name(enum wauth_header h)
{
    return h == WAUTH_SIGNATURE ? "Signature" : "X-Signature";
}

/* The MAC as the header carries it: lower-case hex (Signature) or raw bytes (X-Signature).
 * Its length, or 0 on failure. out holds at least WAUTH_HEX_LEN bytes. */
static size_t header_mac(enum wauth_header h, const char *key, const char *body, size_t len,
                         unsigned char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, len, mac, &mlen) ||
        mlen != WAUTH_MAC_LEN)
        return 0;
    if (h == WAUTH_X_SIGNATURE) {
        memcpy(out, mac, WAUTH_MAC_LEN);
    } else {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < WAUTH_MAC_LEN; i++) {
            out[2 * i] = (unsigned char)hex[mac[i] >> 4];
            out[2 * i + 1] = (unsigned char)hex[mac[i] & 0xf];
        }
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return h == WAUTH_X_SIGNATURE ? WAUTH_MAC_LEN : WAUTH_HEX_LEN;
}

static enum wauth_result verify_header(const struct wauth *a, enum wauth_header h,
                                       const char *header, const char *body, size_t len)
{
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
        unsigned char want[WAUTH_HEX_LEN];
        size_t wlen = key ? header_mac(h, key, body, len, want) : 0;
        if (!key)
            r = WAUTH_UNKNOWN_WEBHOOK;
        else if (wlen == 0 || maclen != wlen)
            r = WAUTH_BAD_MAC;
        else
            r = CRYPTO_memcmp(want, colon + 1, wlen) == 0 ? WAUTH_OK : WAUTH_BAD_MAC;
        OPENSSL_cleanse(want, sizeof want);
    }
    free(dec);
    return r;
}

enum wauth_result wauth_verify(const struct wauth *a, const char *signature,
                               const char *x_signature, const char *body, size_t len)
{
    if (signature && *signature)
        return verify_header(a, WAUTH_SIGNATURE, signature, body, len);
    if (x_signature && *x_signature)
        return verify_header(a, WAUTH_X_SIGNATURE, x_signature, body, len);
    return WAUTH_MISSING;
}

const char *wauth_result_name(enum wauth_result r)
{
    static const char *const names[] = {"ok", "missing signature", "malformed signature",
                                        "unknown webhook id", "wrong signature"};
    return (unsigned)r < 5 ? names[r] : "?";
}

char *wauth_sign(enum wauth_header h, const char *webhook_id, const char *secret, const char *body,
                 size_t len)
{
    size_t idlen = strlen(webhook_id);
    unsigned char *raw = malloc(idlen + 1 + WAUTH_HEX_LEN);
    char *out = NULL;
    if (!raw)
        return NULL;
    memcpy(raw, webhook_id, idlen);
    raw[idlen] = ':';
    size_t mlen = header_mac(h, secret, body, len, raw + idlen + 1);
    if (mlen > 0) {
        size_t rlen = idlen + 1 + mlen;
        out = malloc(4 * ((rlen + 2) / 3) + 1);
        if (out)
            EVP_EncodeBlock((unsigned char *)out, raw, (int)rlen);
    }
    free(raw);
    return out;
}
