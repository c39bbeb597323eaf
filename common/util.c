/* util.c: error buffers, monotonic clock, hex digits, base64, MD5 (see util.h). */
#include "util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void util_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void util_err_reset(char *err, size_t errlen)
{
    if (err && errlen > 0)
        err[0] = '\0';
}

long long util_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_hexval(char ch)
{
    return OPENSSL_hexchar2int((unsigned char)ch);
}

int util_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outcap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    /* EVP_DecodeBlock alone accepts "====" or "YQ=A" and ignores surrounding blanks. */
    size_t pad = (len > 0 && b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    if (len % 4 != 0 || len / 4 * 3 > outcap || len > 0x3ffffffc)
        return -1;
    for (size_t i = 0; i < len - pad; i++) {
        if (!b64[i] || !strchr(alphabet, b64[i]))
            return -1;
    }
    if (len == 0)
        return 0;
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    return n < 0 ? -1 : n - (int)pad;
}

void util_md5_hex(const void *data, size_t len, char *out, size_t nhex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char digits[] = "0123456789abcdef";
    EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
    if (nhex > 2 * (size_t)mdlen)
        nhex = 2 * (size_t)mdlen;
    for (size_t i = 0; i < nhex; i++)
        out[i] = digits[(md[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
    out[nhex] = '\0';
}
