/* util.h: the few helpers every module of common/ needs: the error-buffer convention of
 * STYLE.md, a monotonic clock, hex digits, strict base64 and an MD5 digest in hex (both on
 * OpenSSL). Nothing here allocates. */
#ifndef VMH_UTIL_H
#define VMH_UTIL_H

#include <stddef.h>

/* Formats into err (if err is not NULL and errlen > 0); the one way errors reach a caller's
 * buffer. */
void util_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Empties err (out-parameters are reset at entry). */
void util_err_reset(char *err, size_t errlen);

/* Milliseconds of CLOCK_MONOTONIC. */
long long util_monotonic_ms(void);

/* Value of a hex digit, -1 if ch is none (OpenSSL's OPENSSL_hexchar2int). */
int util_hexval(char ch);

/* Strict base64 (standard alphabet, padded, padding only at the end): decodes the len bytes of
 * b64 into out (room for len / 4 * 3 bytes). The decoded length, or -1 if b64 is not strict
 * base64 or out is too small. "" decodes to 0 bytes. */
int util_b64_decode(const char *b64, size_t len, unsigned char *out, size_t outcap);

/* The first nhex (1..32) lowercase hex digits of MD5(data) into out (nhex + 1 bytes). */
void util_md5_hex(const void *data, size_t len, char *out, size_t nhex);

#endif
